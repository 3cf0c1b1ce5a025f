//! Mutated samples for the property tests: a sample event or delivery from `events/`, with a
//! few of its JSON nodes replaced by generated values (every type, odd strings, NUL bytes) or
//! removed.

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;

/// A JSON value for mutations: scalars of every type, small arrays and objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        "[ -~]{0,24}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(Value::from("refs/heads/../x")),
        Just(Value::from("a\u{0}b")),
        Just(Value::from("0123456789abcdef0123456789abcdef01234567")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::vec(("[a-zA-Z_]{1,12}", inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Every node's path in `value` (a path is a list of object keys and array indices).
fn paths(value: &Value, here: &mut Vec<PathPart>, out: &mut Vec<Vec<PathPart>>) {
    out.push(here.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                here.push(PathPart::Key(key.clone()));
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                here.push(PathPart::Index(i));
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathPart {
    Key(String),
    Index(usize),
}

/// Replaces the node at `path` with `with`, or removes it when `with` is `None`.
fn mutate(root: &mut Value, path: &[PathPart], with: Option<Value>) {
    let Some((last, parent_path)) = path.split_last() else {
        if let Some(with) = with {
            *root = with;
        }
        return;
    };
    let mut parent = root;
    for part in parent_path {
        parent = match (part, parent) {
            (PathPart::Key(key), Value::Object(map)) => match map.get_mut(key) {
                Some(child) => child,
                None => return,
            },
            (PathPart::Index(i), Value::Array(items)) => match items.get_mut(*i) {
                Some(child) => child,
                None => return,
            },
            _ => return,
        };
    }
    match (last, parent, with) {
        (PathPart::Key(key), Value::Object(map), Some(with)) => {
            map.insert(key.clone(), with);
        }
        (PathPart::Key(key), Value::Object(map), None) => {
            map.remove(key);
        }
        (PathPart::Index(i), Value::Array(items), Some(with)) if *i < items.len() => {
            items[*i] = with;
        }
        (PathPart::Index(i), Value::Array(items), None) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

/// The samples of one folder of `events/` (`""` for its top level): (name, JSON).
pub fn samples(folder: &str) -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(folder);
    let mut found: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("events/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().ends_with(".headers.json")
        })
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a sample");
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (
                name.unwrap_or_default(),
                serde_json::from_str(&text).expect("JSON"),
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// A sample chosen from `samples`, with one to four of its nodes replaced or removed.
pub fn mutated(samples: Vec<(String, Value)>) -> impl Strategy<Value = (String, Value)> {
    (
        proptest::sample::select(samples),
        proptest::collection::vec(
            (
                any::<proptest::sample::Index>(),
                proptest::option::weighted(0.8, json_value()),
            ),
            1..5,
        ),
    )
        .prop_map(|((name, mut event), mutations)| {
            for (at, with) in mutations {
                let mut all = Vec::new();
                paths(&event, &mut Vec::new(), &mut all);
                let path = all[at.index(all.len())].clone();
                mutate(&mut event, &path, with);
            }
            (name, event)
        })
}
