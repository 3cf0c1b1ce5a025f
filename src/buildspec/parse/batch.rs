//! Parses `batch`: its tasks, matrix or fan-out, each value checked for its shape here (a graph's
//! meaning, its cycles and unknown names, is checked when the batch is planned).

use super::{Cx, Entry, Kind, Res};
use crate::buildspec::{Batch, BatchEnv, BatchFanout, BatchMatrix, BatchTask};

const KINDS: &[&str] = &["build-list", "build-matrix", "build-graph", "build-fanout"];
const KEYS: &[&str] = &[
    "fast-fail",
    "build-list",
    "build-matrix",
    "build-graph",
    "build-fanout",
];
const TASK_KEYS: &[&str] = &[
    "identifier",
    "buildspec",
    "env",
    "ignore-failure",
    "depend-on",
    "debug-session",
];
const ENV_KEYS: &[&str] = &[
    "variables",
    "compute-type",
    "image",
    "privileged-mode",
    "type",
    "fleet",
];
const MATRIX_KEYS: &[&str] = &["static", "dynamic"];
const STATIC_KEYS: &[&str] = &["ignore-failure", "env", "debug-session"];
const DYNAMIC_KEYS: &[&str] = &["buildspec", "env"];
const DYNAMIC_ENV_KEYS: &[&str] = &["variables", "image", "compute-type"];
const FANOUT_KEYS: &[&str] = &["parallelism", "ignore-failure"];

/// Parses `batch`.
pub(super) fn batch(cx: &mut Cx, e: &Entry) -> Res<Batch> {
    let mut batch = Batch {
        line: e.line,
        ..Batch::default()
    };
    for f in cx.fields(e.value, &e.path, "a mapping of batch settings", KEYS)? {
        if f.key == "fast-fail" {
            batch.fast_fail = cx.boolean(&f)?;
            continue;
        }
        if let Some(first) = &batch.kind {
            let expected = format!("only one of {}", KINDS.join(", "));
            let found = format!("`{first}` and `{}`", f.key);
            return Err(cx.invalid(&f.path, f.line, expected, found));
        }
        batch.kind = Some(f.key.to_string());
        match f.key {
            "build-list" | "build-graph" => batch.tasks = tasks(cx, &f)?,
            "build-matrix" => batch.matrix = Some(matrix(cx, &f)?),
            _ => batch.fanout = Some(fanout(cx, &f)?),
        }
    }
    Ok(batch)
}

/// A list of tasks.
fn tasks(cx: &mut Cx, e: &Entry) -> Res<Vec<BatchTask>> {
    let Kind::Seq(items) = &e.value.kind else {
        if e.value.is_null() {
            return Ok(Vec::new());
        }
        return Err(cx.invalid(
            &e.path,
            e.value_line(),
            "a list of tasks",
            e.value.describe(),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}[{i}]", e.path);
        let mut task = BatchTask {
            path: path.clone(),
            line: item.line,
            ..BatchTask::default()
        };
        let expected = "a task: a mapping with `identifier`";
        for f in cx.fields(item, &path, expected, TASK_KEYS)? {
            match f.key {
                "identifier" => task.identifier = cx.string(&f, "a name")?,
                "buildspec" => task.buildspec = cx.opt_string(&f)?,
                "env" => task.env = env(cx, &f)?,
                "ignore-failure" => task.ignore_failure = cx.boolean(&f)?,
                "depend-on" => task.depend_on = cx.strings(&f)?,
                _ => {}
            }
        }
        if task.identifier.is_empty() {
            return Err(cx.invalid(&path, item.line, expected, "no `identifier`"));
        }
        out.push(task);
    }
    Ok(out)
}

/// A task's `env` (or the matrix's static one).
fn env(cx: &mut Cx, e: &Entry) -> Res<BatchEnv> {
    let mut env = BatchEnv::default();
    for f in cx.fields(e.value, &e.path, "a mapping of build settings", ENV_KEYS)? {
        match f.key {
            "variables" => {
                for v in cx.pairs(f.value, &f.path, "a mapping of variables")? {
                    let value = cx.string(&v, "a value")?;
                    env.variables.push((v.key.to_string(), value));
                }
            }
            "compute-type" => env.compute_type = cx.opt_string(&f)?,
            "image" => env.image = cx.opt_string(&f)?,
            "privileged-mode" => env.privileged_mode = cx.boolean(&f)?,
            "type" => env.kind = cx.opt_string(&f)?,
            _ => {}
        }
    }
    Ok(env)
}

fn matrix(cx: &mut Cx, e: &Entry) -> Res<BatchMatrix> {
    let mut matrix = BatchMatrix {
        line: e.line,
        ..BatchMatrix::default()
    };
    let expected = "a mapping with `static` and `dynamic`";
    for f in cx.fields(e.value, &e.path, expected, MATRIX_KEYS)? {
        if f.key == "static" {
            for s in cx.fields(f.value, &f.path, "a mapping", STATIC_KEYS)? {
                match s.key {
                    "ignore-failure" => matrix.ignore_failure = cx.boolean(&s)?,
                    "env" => matrix.env = env(cx, &s)?,
                    _ => {}
                }
            }
            continue;
        }
        for d in cx.fields(f.value, &f.path, "a mapping", DYNAMIC_KEYS)? {
            if d.key == "buildspec" {
                matrix.buildspecs = cx.strings(&d)?;
                continue;
            }
            for v in cx.fields(d.value, &d.path, "a mapping of lists", DYNAMIC_ENV_KEYS)? {
                match v.key {
                    "image" => matrix.images = cx.strings(&v)?,
                    "compute-type" => matrix.compute_types = cx.strings(&v)?,
                    _ => {
                        for var in cx.pairs(v.value, &v.path, "a mapping of value lists")? {
                            let values = cx.strings(&var)?;
                            matrix.variables.push((var.key.to_string(), values));
                        }
                    }
                }
            }
        }
    }
    Ok(matrix)
}

fn fanout(cx: &mut Cx, e: &Entry) -> Res<BatchFanout> {
    let mut fanout = BatchFanout {
        parallelism: 0,
        ignore_failure: false,
        line: e.line,
    };
    for f in cx.fields(
        e.value,
        &e.path,
        "a mapping with `parallelism`",
        FANOUT_KEYS,
    )? {
        if f.key == "ignore-failure" {
            fanout.ignore_failure = cx.boolean(&f)?;
            continue;
        }
        let text = cx.string(&f, "a whole number of shards")?;
        fanout.parallelism = text
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                cx.invalid(
                    &f.path,
                    f.line,
                    "a whole number of shards, 1 or more",
                    format!("`{text}`"),
                )
            })?;
    }
    if fanout.parallelism == 0 {
        let found = "no `parallelism`";
        return Err(cx.invalid(&e.path, e.line, "a mapping with `parallelism`", found));
    }
    Ok(fanout)
}
