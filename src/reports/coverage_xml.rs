//! Coverage in XML: Cobertura (and coverage.py's Cobertura), JaCoCo and Clover (OpenClover,
//! PHPUnit). Each is counted per source file and added up, as each tool counts:
//! - Cobertura: the `<line>` records of each class's own `<lines>` (a method's `<lines>` repeat
//!   them), each (file, line) once, covered when it has hits; branches from a branch line's
//!   `condition-coverage="50% (1/2)"`.
//! - JaCoCo: each `<sourcefile>`'s `LINE` and `BRANCH` counters (the report's own counters are
//!   their sum).
//! - Clover: each `<file>`'s `<metrics>`: statements as lines, conditionals as branches.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use super::model::{CounterPair, CoverageReport};
use super::xml::{Attrs, Ev, expect_root, walk};

/// One file's lines: line number ─▶ (hits, branches covered and total).
type Lines = BTreeMap<u64, (u64, Option<(u64, u64)>)>;

pub(super) fn read_cobertura(input: impl BufRead, into: &mut CoverageReport) -> Result<(), String> {
    let mut root = None;
    let mut depth = 0usize;
    let mut files: HashMap<String, Lines> = HashMap::new();
    // The open class: its depth and file.
    let mut class: Option<(usize, String)> = None;
    let mut in_class_lines = false;
    walk(input, |ev| {
        match ev {
            Ev::Open(name, attrs) => {
                expect_root(name, &mut root, &["coverage"])?;
                depth += 1;
                match (name, &class) {
                    ("class", _) => {
                        let file = attrs.get("filename").unwrap_or_default().to_string();
                        class = Some((depth, file));
                    }
                    ("lines", Some((at, _))) if depth == at + 1 => in_class_lines = true,
                    ("line", Some((at, file))) if in_class_lines && depth == at + 2 => {
                        let number = attrs.number("number");
                        let hits = attrs.number("hits");
                        let branches = (attrs.get("branch") == Some("true"))
                            .then(|| condition_coverage(attrs))
                            .flatten();
                        let line = files.entry(file.clone()).or_default().entry(number);
                        let entry = line.or_insert((0, None));
                        entry.0 = entry.0.max(hits);
                        if branches.is_some() {
                            entry.1 = branches;
                        }
                    }
                    _ => {}
                }
            }
            Ev::Close(name) => {
                match (name, &class) {
                    ("lines", Some((at, _))) if depth == at + 1 => in_class_lines = false,
                    ("class", Some((at, _))) if depth == *at => class = None,
                    _ => {}
                }
                depth = depth.saturating_sub(1);
            }
            Ev::Text(_) => {}
        }
        Ok(())
    })?;
    into.measured_branches();
    for (file, lines) in files {
        let covered = lines.values().filter(|(hits, _)| *hits > 0).count() as u64;
        let (bc, bt) = lines
            .values()
            .filter_map(|(_, b)| *b)
            .fold((0, 0), |(c, t), (bc, bt)| (c + bc, t + bt));
        into.add_file(
            &file,
            CounterPair::new(covered, lines.len() as u64),
            Some(CounterPair::new(bc, bt)),
        );
    }
    Ok(())
}

/// `condition-coverage="50% (1/2)"` as (1, 2).
fn condition_coverage(attrs: &Attrs) -> Option<(u64, u64)> {
    let text = attrs.get("condition-coverage")?;
    let inner = text.split_once('(')?.1.split_once(')')?.0;
    let (covered, total) = inner.split_once('/')?;
    let (covered, total) = (covered.trim().parse().ok()?, total.trim().parse().ok()?);
    (covered <= total).then_some((covered, total))
}

pub(super) fn read_jacoco(input: impl BufRead, into: &mut CoverageReport) -> Result<(), String> {
    let mut root = None;
    let mut depth = 0usize;
    let mut package = String::new();
    let mut file: Option<(usize, String, CounterPair, CounterPair)> = None;
    let mut report = (CounterPair::default(), CounterPair::default());
    let mut any_file = false;
    walk(input, |ev| {
        match ev {
            Ev::Open(name, attrs) => {
                expect_root(name, &mut root, &["report"])?;
                depth += 1;
                match name {
                    "package" => package = attrs.get("name").unwrap_or_default().to_string(),
                    "sourcefile" => {
                        let name = attrs.get("name").unwrap_or_default();
                        let path = if package.is_empty() {
                            name.to_string()
                        } else {
                            format!("{package}/{name}")
                        };
                        file = Some((depth, path, Default::default(), Default::default()));
                    }
                    "counter" => {
                        let pair = CounterPair {
                            covered: attrs.number("covered"),
                            missed: attrs.number("missed"),
                        };
                        let slot = match (&mut file, depth) {
                            (Some((at, _, lines, branches)), d) if d == *at + 1 => {
                                Some((lines, branches))
                            }
                            (_, 2) => Some((&mut report.0, &mut report.1)),
                            _ => None,
                        };
                        if let Some((lines, branches)) = slot {
                            match attrs.get("type") {
                                Some("LINE") => *lines = pair,
                                Some("BRANCH") => *branches = pair,
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            Ev::Close(name) => {
                if name == "sourcefile" {
                    if let Some((_, path, lines, branches)) = file.take() {
                        any_file = true;
                        into.add_file(&path, lines, Some(branches));
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Ev::Text(_) => {}
        }
        Ok(())
    })?;
    into.measured_branches();
    if !any_file {
        // A report made without source files: the report's own counters.
        into.add_file("(all classes)", report.0, Some(report.1));
    }
    Ok(())
}

pub(super) fn read_clover(input: impl BufRead, into: &mut CoverageReport) -> Result<(), String> {
    let mut root = None;
    let mut depth = 0usize;
    let mut file: Option<(usize, String)> = None;
    let mut project: Option<(CounterPair, CounterPair)> = None;
    let mut project_depth = 0;
    let mut any_file = false;
    walk(input, |ev| {
        match ev {
            Ev::Open(name, attrs) => {
                expect_root(name, &mut root, &["coverage"])?;
                depth += 1;
                match name {
                    "project" => project_depth = depth,
                    "file" => {
                        let path = attrs.get("path").or(attrs.get("name")).unwrap_or_default();
                        file = Some((depth, path.to_string()));
                    }
                    "metrics" => {
                        let lines = CounterPair::new(
                            attrs.number("coveredstatements"),
                            attrs.number("statements"),
                        );
                        let branches = CounterPair::new(
                            attrs.number("coveredconditionals"),
                            attrs.number("conditionals"),
                        );
                        match &file {
                            Some((at, path)) if depth == at + 1 => {
                                any_file = true;
                                into.add_file(path, lines, Some(branches));
                            }
                            None if depth == project_depth + 1 => {
                                project = Some((lines, branches));
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            Ev::Close(name) => {
                if name == "file" && file.as_ref().is_some_and(|(at, _)| *at == depth) {
                    file = None;
                }
                depth = depth.saturating_sub(1);
            }
            Ev::Text(_) => {}
        }
        Ok(())
    })?;
    into.measured_branches();
    if let (false, Some((lines, branches))) = (any_file, project) {
        into.add_file("(all files)", lines, Some(branches));
    }
    Ok(())
}
