//! Coverage that is not XML: SimpleCov's `.resultset.json` and LCOV's `lcov.info`.
//! - SimpleCov: every suite's files merged, hits added line by line (`null` and `"ignored"`
//!   lines are not counted); branches (SimpleCov 0.18's `branches`) arm by arm, when measured.
//!   Both shapes are read: `{file: {"lines": [...]}}` and the older `{file: [...]}`.
//! - LCOV: each `SF:` record's `DA:` lines and `BRDA:` branches (a branch taken `-` never ran),
//!   not its `LF`/`LH` totals.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use serde_json::Value;

use super::model::{CounterPair, CoverageReport};

pub(super) fn read_simplecov(
    mut input: impl BufRead,
    into: &mut CoverageReport,
) -> Result<(), String> {
    super::cucumber::skip_bom(&mut input).map_err(|err| format!("cannot read: {err}"))?;
    let data: Value = serde_json::from_reader(input)
        .map_err(|err| format!("not a SimpleCov .resultset.json: {err}"))?;
    let suites = data
        .as_object()
        .ok_or("not a SimpleCov .resultset.json: the top level is not an object of suites")?;
    let mut lines: BTreeMap<&str, HashMap<usize, u64>> = BTreeMap::new();
    let mut branches: BTreeMap<&str, HashMap<(&str, &str), u64>> = BTreeMap::new();
    let mut measured_branches = false;
    for (suite, body) in suites {
        let coverage = body
            .get("coverage")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("suite `{suite}`: no `coverage` object"))?;
        for (file, entry) in coverage {
            let hits = match entry {
                Value::Array(hits) => hits,
                Value::Object(entry) => match entry.get("lines") {
                    Some(Value::Array(hits)) => hits,
                    _ => continue,
                },
                _ => {
                    return Err(format!(
                        "suite `{suite}`, file `{file}`: not a list of hits"
                    ));
                }
            };
            let acc = lines.entry(file).or_default();
            for (at, hit) in hits.iter().enumerate() {
                if let Some(hit) = hit.as_u64() {
                    *acc.entry(at).or_default() += hit;
                }
            }
            if let Some(arms) = entry.get("branches").and_then(Value::as_object) {
                measured_branches = true;
                let acc = branches.entry(file).or_default();
                for (condition, arms) in arms {
                    for (arm, hit) in arms.as_object().into_iter().flatten() {
                        *acc.entry((condition, arm)).or_default() += hit.as_u64().unwrap_or(0);
                    }
                }
            }
        }
    }
    if measured_branches {
        into.measured_branches();
    }
    for (file, hits) in &lines {
        let covered = hits.values().filter(|h| **h > 0).count() as u64;
        let file_branches = branches.get(file).map(|arms| {
            CounterPair::new(
                arms.values().filter(|h| **h > 0).count() as u64,
                arms.len() as u64,
            )
        });
        into.add_file(
            file,
            CounterPair::new(covered, hits.len() as u64),
            file_branches,
        );
    }
    Ok(())
}

/// One `SF:` record being read.
#[derive(Default)]
struct Record {
    file: String,
    lines: HashMap<u64, u64>,
    branches: HashMap<(String, String, String), u64>,
}

pub(super) fn read_lcov(input: impl BufRead, into: &mut CoverageReport) -> Result<(), String> {
    let mut record: Option<Record> = None;
    let mut records = 0usize;
    let mut end = |record: Record, into: &mut CoverageReport| {
        records += 1;
        let covered = record.lines.values().filter(|h| **h > 0).count() as u64;
        let taken = record.branches.values().filter(|h| **h > 0).count() as u64;
        into.add_file(
            &record.file,
            CounterPair::new(covered, record.lines.len() as u64),
            Some(CounterPair::new(taken, record.branches.len() as u64)),
        );
    };
    for (at, line) in input.split(b'\n').enumerate() {
        let line = line.map_err(|err| format!("cannot read: {err}"))?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches('\r');
        let bad = |what: &str| format!("line {}: {what}, not `{}`", at + 1, super::cut(line));
        if let Some(file) = line.strip_prefix("SF:") {
            if let Some(open) = record.take() {
                end(open, into);
            }
            record = Some(Record {
                file: file.to_string(),
                ..Record::default()
            });
        } else if line == "end_of_record" {
            if let Some(open) = record.take() {
                end(open, into);
            }
        } else if let Some(da) = line.strip_prefix("DA:") {
            let open = record
                .as_mut()
                .ok_or_else(|| bad("a DA record before any SF"))?;
            let mut parts = da.split(',');
            let number = parts.next().and_then(|n| n.trim().parse::<u64>().ok());
            let hits = parts.next().and_then(|h| h.trim().parse::<i64>().ok());
            let (Some(number), Some(hits)) = (number, hits) else {
                return Err(bad("`DA:<line>,<hits>`"));
            };
            *open.lines.entry(number).or_default() += hits.max(0) as u64;
        } else if let Some(brda) = line.strip_prefix("BRDA:") {
            let open = record
                .as_mut()
                .ok_or_else(|| bad("a BRDA record before any SF"))?;
            let parts: Vec<&str> = brda.split(',').collect();
            let [line_no, block, branch, taken] = parts[..] else {
                return Err(bad("`BRDA:<line>,<block>,<branch>,<taken>`"));
            };
            let taken = match taken.trim() {
                "-" => 0,
                n => n
                    .parse::<u64>()
                    .map_err(|_| bad("`BRDA:<line>,<block>,<branch>,<taken>`"))?,
            };
            let key = (line_no.to_string(), block.to_string(), branch.to_string());
            *open.branches.entry(key).or_default() += taken;
        }
    }
    if let Some(open) = record.take() {
        end(open, into);
    }
    into.measured_branches();
    if records == 0 {
        return Err("no `SF:` record: not an LCOV tracefile".into());
    }
    Ok(())
}
