//! Buildspec YAML ─▶ [`BuildSpec`](super::BuildSpec), by hand over the [`yaml`](super::yaml)
//! node tree so every error and warning can name its key path and line.
//!
//! This file holds the top level and the shared helpers (mappings with known keys, strings,
//! booleans, lists of strings); the sections live in the submodules.

mod batch;
mod env;
mod phases;
mod sections;

use super::yaml::{self, Kind, Node};
use super::{BuildSpec, BuildspecError, Parsed, Phases, Version, Warning};

/// A parse step's result.
type Res<T> = Result<T, BuildspecError>;

/// The top-level keys.
const TOP_KEYS: &[&str] = &[
    "version",
    "run-as",
    "env",
    "proxy",
    "batch",
    "phases",
    "reports",
    "artifacts",
    "cache",
    "environment_variables",
];

/// Parses buildspec text; `file` names it in messages.
pub fn parse(file: &str, text: &str) -> Result<Parsed, BuildspecError> {
    let root = yaml::load(file, text)?;
    let mut cx = Cx {
        file,
        warnings: Vec::new(),
    };
    let spec = cx.buildspec(root.as_ref())?;
    Ok(Parsed {
        spec,
        warnings: cx.warnings,
    })
}

/// One entry of a mapping: its key, the key's path and line, and the value.
struct Entry<'n> {
    key: &'n str,
    path: String,
    line: usize,
    value: &'n Node,
}

impl Entry<'_> {
    /// The line to report a problem with the value on.
    fn value_line(&self) -> usize {
        self.value.line
    }
}

/// The parse's state: the file name for errors and the warnings so far.
struct Cx<'f> {
    file: &'f str,
    warnings: Vec<Warning>,
}

/// `path.key`, or `key` at the top level.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Cx<'_> {
    fn buildspec(&mut self, root: Option<&Node>) -> Res<BuildSpec> {
        const WHOLE: &str = "a mapping with `version` and `phases`";
        let root = match root {
            None => return Err(self.invalid("buildspec", 1, WHOLE, "an empty document")),
            Some(node) if !matches!(node.kind, Kind::Map(_)) => {
                return Err(self.invalid("buildspec", node.line, WHOLE, node.describe()));
            }
            Some(node) => node,
        };
        let mut version = None;
        let mut spec = BuildSpec {
            version: Version::V0_2,
            run_as: None,
            env: Default::default(),
            proxy: None,
            batch: None,
            phases: Phases::default(),
            reports: Vec::new(),
            artifacts: None,
            cache: None,
        };
        let mut legacy = Vec::new();
        let mut saw_phases = false;
        for e in self.fields(root, "", WHOLE, TOP_KEYS)? {
            match e.key {
                "version" => version = Some(self.version(&e)?),
                "run-as" => spec.run_as = self.opt_string(&e)?,
                "env" => spec.env = env::env(self, &e)?,
                "proxy" => spec.proxy = Some(sections::proxy(self, &e)?),
                "batch" => spec.batch = Some(batch::batch(self, &e)?),
                "phases" => {
                    saw_phases = true;
                    spec.phases = phases::phases(self, &e)?;
                }
                "reports" => spec.reports = sections::reports(self, &e)?,
                "artifacts" => spec.artifacts = Some(sections::artifacts(self, &e)?),
                "cache" => spec.cache = Some(sections::cache(self, &e)?),
                _ => legacy = env::legacy_variables(self, &e)?,
            }
        }
        spec.version = version.ok_or_else(|| {
            self.invalid("version", root.line, "a `version` key (0.1 or 0.2)", "none")
        })?;
        if !saw_phases {
            self.warn(
                "phases",
                root.line,
                "no `phases`: the build runs no commands",
            );
        }
        for (name, value) in legacy {
            if spec.env.variables.iter().any(|(n, _)| *n == name) {
                let path = format!("environment_variables.plaintext.{name}");
                self.warn(&path, root.line, "also set in `env.variables`, which wins");
            } else {
                spec.env.variables.push((name, value));
            }
        }
        Ok(spec)
    }

    fn version(&self, e: &Entry) -> Res<Version> {
        match e.value.as_scalar() {
            Some("0.1") => Ok(Version::V0_1),
            Some("0.2") => Ok(Version::V0_2),
            _ => Err(self.invalid(&e.path, e.value_line(), "0.1 or 0.2", e.value.describe())),
        }
    }

    /// An `Invalid` error for this file.
    fn invalid(
        &self,
        path: &str,
        line: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> BuildspecError {
        BuildspecError::Invalid {
            file: self.file.to_string(),
            line,
            path: path.to_string(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    fn warn(&mut self, path: &str, line: usize, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.to_string(),
            line,
            message: message.into(),
        });
    }

    /// The entries of a mapping whose keys the user names (variables, report groups, ...).
    /// A null value counts as an empty mapping. A repeated key is warned about and its last
    /// value wins, in the place of the first.
    fn pairs<'n>(&mut self, node: &'n Node, path: &str, expected: &str) -> Res<Vec<Entry<'n>>> {
        let pairs = match &node.kind {
            Kind::Null => return Ok(Vec::new()),
            Kind::Map(pairs) => pairs,
            _ => return Err(self.invalid(path, node.line, expected, node.describe())),
        };
        let mut out: Vec<Entry<'n>> = Vec::with_capacity(pairs.len());
        for (k, value) in pairs {
            let Some(key) = k.as_scalar() else {
                let path = if path.is_empty() { "buildspec" } else { path };
                return Err(self.invalid(
                    path,
                    k.line,
                    "a plain key name",
                    format!("{} as a key", k.describe()),
                ));
            };
            let entry = Entry {
                key,
                path: join(path, key),
                line: k.line,
                value,
            };
            match out.iter_mut().find(|o| o.key == key) {
                Some(first) => {
                    let message = format!(
                        "duplicate key `{key}` (first on line {}); the last value is used",
                        first.line
                    );
                    self.warn(&entry.path, entry.line, message);
                    *first = Entry {
                        line: first.line,
                        ..entry
                    };
                }
                None => out.push(entry),
            }
        }
        Ok(out)
    }

    /// The entries of a mapping with a fixed set of keys; other keys are warned about (with a
    /// suggestion when one is close) and dropped.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        expected: &str,
        known: &[&str],
    ) -> Res<Vec<Entry<'n>>> {
        let mut out = self.pairs(node, path, expected)?;
        let mut unknown = Vec::new();
        out.retain(|e| {
            let keep = known.contains(&e.key);
            if !keep {
                unknown.push((e.path.clone(), e.line, e.key.to_string()));
            }
            keep
        });
        for (path, line, key) in unknown {
            let message = match suggest(&key, known) {
                Some(near) => format!("unknown key `{key}`; did you mean `{near}`?"),
                None => format!(
                    "unknown key `{key}`, ignored (known here: {})",
                    known.join(", ")
                ),
            };
            self.warn(&path, line, message);
        }
        Ok(out)
    }

    /// A scalar as text; numbers and booleans keep their source text.
    fn string(&self, e: &Entry, expected: &str) -> Res<String> {
        match e.value.as_scalar() {
            Some(text) => Ok(text.to_string()),
            None => Err(self.invalid(&e.path, e.value_line(), expected, e.value.describe())),
        }
    }

    /// A scalar as text, or `None` when the value is empty.
    fn opt_string(&self, e: &Entry) -> Res<Option<String>> {
        if e.value.is_null() {
            return Ok(None);
        }
        self.string(e, "a string").map(Some)
    }

    /// A YAML 1.1 boolean: yes/no, true/false, on/off, in any case.
    fn boolean(&self, e: &Entry) -> Res<bool> {
        let expected = "yes or no (or true/false, on/off)";
        let text = e.value.as_scalar().map(str::to_ascii_lowercase);
        match text.as_deref() {
            Some("yes" | "true" | "on") => Ok(true),
            Some("no" | "false" | "off") => Ok(false),
            _ => Err(self.invalid(&e.path, e.value_line(), expected, e.value.describe())),
        }
    }

    /// A list of strings; a single scalar is a one-item list, an empty value an empty list, and
    /// empty items are skipped with a warning.
    fn strings(&mut self, e: &Entry) -> Res<Vec<String>> {
        const EXPECTED: &str = "a list of strings";
        match &e.value.kind {
            Kind::Null => Ok(Vec::new()),
            Kind::Scalar { text, .. } => Ok(vec![text.clone()]),
            Kind::Map(_) => Err(self.invalid(&e.path, e.value_line(), EXPECTED, "a mapping")),
            Kind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{}[{i}]", e.path);
                    match &item.kind {
                        Kind::Scalar { text, .. } => out.push(text.clone()),
                        Kind::Null => self.warn(&path, item.line, "empty list item, skipped"),
                        _ => {
                            return Err(self.invalid(
                                &path,
                                item.line,
                                "a string",
                                item.describe(),
                            ));
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}

/// A known key `key` was probably meant as: same but for case and `-`/`_`, or one or two
/// letters off.
fn suggest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let key_n = norm(key.trim());
    if let Some(k) = known.iter().find(|k| norm(k) == key_n) {
        return Some(k);
    }
    let limit = if key_n.chars().count() >= 6 { 2 } else { 1 };
    known
        .iter()
        .map(|k| (distance(&key_n, &norm(k)), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance between two short strings (insertions, deletions, substitutions).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;
