//! One EMF record as a line of JSON: the `_aws` metadata (timestamp, namespace, dimensions, the
//! metrics' names and units) first, then the dimension values, the properties and the metric
//! values as top-level keys.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The dimension sets of every record: per repository, and per repository and branch.
const DIMENSIONS: [&[&str]; 2] = [&["Repository"], &["Repository", "Branch"]];

/// A CloudWatch unit, as the EMF `Unit` field spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    /// No unit (a cost in USD).
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// One metric value in a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub unit: Unit,
    /// A JSON number.
    pub value: Value,
}

impl Metric {
    pub fn count(name: impl Into<String>, value: u64) -> Metric {
        Metric {
            name: name.into(),
            unit: Unit::Count,
            value: value.into(),
        }
    }

    pub fn milliseconds(name: impl Into<String>, value: u64) -> Metric {
        Metric {
            name: name.into(),
            unit: Unit::Milliseconds,
            value: value.into(),
        }
    }

    /// A value without a unit; a value that is not finite is written as 0.
    pub fn plain(name: impl Into<String>, value: f64) -> Metric {
        Metric {
            name: name.into(),
            unit: Unit::None,
            value: serde_json::Number::from_f64(value).map_or(0.into(), Value::Number),
        }
    }
}

/// What every record of one build carries: the namespace, the dimension values and the build id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    pub namespace: String,
    pub repository: String,
    /// The branch or tag name; `-` when unknown.
    pub branch: String,
    pub build_id: String,
}

impl Labels {
    /// The labels of one build; an empty branch becomes `-`.
    pub fn new(namespace: &str, repository: &str, branch: &str, build_id: &str) -> Labels {
        let branch = if branch.trim().is_empty() {
            "-"
        } else {
            branch
        };
        Labels {
            namespace: namespace.to_string(),
            repository: repository.to_string(),
            branch: branch.to_string(),
            build_id: build_id.to_string(),
        }
    }
}

/// The Branch dimension of a reference: `refs/heads/main` gives `main`, `refs/tags/v1` gives
/// `v1`, another name is kept whole, and no reference gives `-`.
pub fn branch_name(reference: Option<&str>) -> String {
    match reference.map(str::trim).filter(|r| !r.is_empty()) {
        None => "-".to_string(),
        Some(r) => crate::names::short_ref(r).to_string(),
    }
}

/// One EMF record with the current time. `properties` are extra top-level keys that are not
/// metrics (`Status`, `Reason`); a property or metric named like a label is dropped.
pub fn emf_line(labels: &Labels, properties: &[(&str, Value)], metrics: &[Metric]) -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    emf_line_at(now_ms, labels, properties, metrics)
}

/// [`emf_line`] at a given time (milliseconds since the epoch).
pub(crate) fn emf_line_at(
    timestamp_ms: u64,
    labels: &Labels,
    properties: &[(&str, Value)],
    metrics: &[Metric],
) -> String {
    const RESERVED: [&str; 4] = ["_aws", "Repository", "Branch", "BuildId"];
    let metrics: Vec<&Metric> = metrics
        .iter()
        .filter(|m| !RESERVED.contains(&m.name.as_str()))
        .collect();
    let declared: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
        .collect();
    let aws = json!({
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [{
            "Namespace": labels.namespace,
            "Dimensions": DIMENSIONS,
            "Metrics": declared,
        }],
    });
    let mut line = String::with_capacity(512);
    line.push('{');
    push_field(&mut line, "_aws", &aws);
    push_field(&mut line, "Repository", &labels.repository.as_str().into());
    push_field(&mut line, "Branch", &labels.branch.as_str().into());
    push_field(&mut line, "BuildId", &labels.build_id.as_str().into());
    for (key, value) in properties {
        let taken = RESERVED.contains(key) || metrics.iter().any(|m| m.name == *key);
        if !taken {
            push_field(&mut line, key, value);
        }
    }
    for metric in metrics {
        push_field(&mut line, &metric.name, &metric.value);
    }
    line.push('}');
    line
}

fn push_field(line: &mut String, key: &str, value: &Value) {
    if !line.ends_with('{') {
        line.push(',');
    }
    line.push_str(&Value::from(key).to_string());
    line.push(':');
    line.push_str(&value.to_string());
}
