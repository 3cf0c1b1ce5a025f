//! From the buildspec's `batch` to the children, checked and ordered.

use std::collections::{BTreeMap, HashSet};

use super::{Child, MAX_CHILDREN};
use crate::buildspec::{Batch, BatchEnv, BatchMatrix, BatchTask};

/// The children of `batch`, each after the ones it depends on (file order otherwise).
pub fn plan(batch: &Batch) -> Result<Vec<Child>, String> {
    let children = match batch.kind.as_deref() {
        Some("build-list") => list(&batch.tasks, false)?,
        Some("build-graph") => order(list(&batch.tasks, true)?)?,
        Some("build-matrix") => matrix(batch.matrix.as_ref().ok_or("batch.build-matrix: empty")?)?,
        Some("build-fanout") => {
            let fanout = batch.fanout.as_ref().ok_or("batch.build-fanout: empty")?;
            check_count(
                "batch.build-fanout.parallelism",
                fanout.parallelism as usize,
            )?;
            (0..fanout.parallelism)
                .map(|index| Child {
                    identifier: format!("shard_{index}"),
                    ignore_failure: fanout.ignore_failure,
                    shard: Some((index, fanout.parallelism)),
                    ..child("")
                })
                .collect()
        }
        _ => {
            return Err(
                "batch: none of build-list, build-graph, build-matrix, build-fanout".into(),
            );
        }
    };
    if children.is_empty() {
        return Err(format!(
            "batch.{}: no builds",
            batch.kind.as_deref().unwrap_or("")
        ));
    }
    Ok(children)
}

fn child(identifier: &str) -> Child {
    Child {
        identifier: identifier.to_string(),
        buildspec: None,
        variables: Vec::new(),
        depend_on: Vec::new(),
        ignore_failure: false,
        compute_type: None,
        image: None,
        privileged_mode: false,
        shard: None,
    }
}

fn check_count(path: &str, count: usize) -> Result<(), String> {
    if count > MAX_CHILDREN {
        return Err(format!(
            "{path}: {count} builds, more than the {MAX_CHILDREN} a batch may have"
        ));
    }
    Ok(())
}

/// A task's environment onto `child`, its compute type checked.
fn with_env(mut child: Child, env: &BatchEnv, path: &str) -> Result<Child, String> {
    if let Some(compute) = &env.compute_type {
        check_compute_type(compute).map_err(|why| format!("{path}.env.compute-type: {why}"))?;
    }
    child.variables.extend(env.variables.iter().cloned());
    child.compute_type = env.compute_type.clone().or(child.compute_type);
    child.image = env.image.clone().or(child.image);
    child.privileged_mode |= env.privileged_mode;
    Ok(child)
}

/// CodeBuild's compute types pushbuild can place: its general ones (on CodeBuild, when a
/// project is configured) and its Lambda ones (here). Fleets and attribute-based or custom
/// instance types have no equivalent.
fn check_compute_type(compute: &str) -> Result<(), String> {
    const GENERAL: &[&str] = &["SMALL", "MEDIUM", "LARGE", "XLARGE", "2XLARGE"];
    const LAMBDA: &[&str] = &["1GB", "2GB", "4GB", "8GB", "10GB"];
    let known = compute
        .strip_prefix("BUILD_GENERAL1_")
        .is_some_and(|size| GENERAL.contains(&size))
        || compute
            .strip_prefix("BUILD_LAMBDA_")
            .is_some_and(|size| LAMBDA.contains(&size));
    if known {
        Ok(())
    } else {
        Err(format!(
            "`{compute}` has no equivalent here (BUILD_GENERAL1_SMALL … 2XLARGE, or \
             BUILD_LAMBDA_1GB … 10GB)"
        ))
    }
}

/// Checks a CodeBuild identifier: letters, digits and underscores, at most 127.
fn check_identifier(task: &BatchTask) -> Result<(), String> {
    let id = &task.identifier;
    let valid = !id.is_empty()
        && id.len() <= 127
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{} (line {}): identifier `{id}` may only have letters, digits and underscores \
             (at most 127)",
            task.path, task.line
        ))
    }
}

/// The tasks as children, checked; `graph` allows `depend-on`.
fn list(tasks: &[BatchTask], graph: bool) -> Result<Vec<Child>, String> {
    check_count("batch", tasks.len())?;
    let mut seen = HashSet::new();
    let mut children = Vec::with_capacity(tasks.len());
    for task in tasks {
        check_identifier(task)?;
        if !seen.insert(task.identifier.as_str()) {
            return Err(format!(
                "{} (line {}): identifier `{}` is used twice",
                task.path, task.line, task.identifier
            ));
        }
        if !graph && !task.depend_on.is_empty() {
            return Err(format!(
                "{} (`{}`): depend-on is for build-graph; a build-list's builds all start at once",
                task.path, task.identifier
            ));
        }
        let mut child = with_env(child(&task.identifier), &task.env, &task.path)?;
        child.buildspec = task.buildspec.clone();
        child.ignore_failure = task.ignore_failure;
        child.depend_on = task.depend_on.clone();
        children.push(child);
    }
    for (task, child) in tasks.iter().zip(&children) {
        for dep in &child.depend_on {
            if !seen.contains(dep.as_str()) || dep == &child.identifier {
                let what = if dep == &child.identifier {
                    "itself"
                } else {
                    "no task"
                };
                return Err(format!(
                    "{} (`{}`): depend-on `{dep}` names {what}",
                    task.path, task.identifier
                ));
            }
        }
    }
    Ok(children)
}

/// The graph's children in an order that puts each after what it depends on, or the cycle.
fn order(children: Vec<Child>) -> Result<Vec<Child>, String> {
    let mut done: HashSet<String> = HashSet::new();
    let mut left = children;
    let mut ordered = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let (ready, waiting): (Vec<Child>, Vec<Child>) = left
            .into_iter()
            .partition(|c| c.depend_on.iter().all(|d| done.contains(d)));
        if ready.is_empty() {
            return Err(format!("batch.build-graph: a cycle: {}", cycle(&waiting)));
        }
        done.extend(ready.iter().map(|c| c.identifier.clone()));
        ordered.extend(ready);
        left = waiting;
    }
    Ok(ordered)
}

/// One cycle among `waiting` (each of which waits for another of them), as `a → b → a`.
fn cycle(waiting: &[Child]) -> String {
    let by_id: BTreeMap<&str, &Child> =
        waiting.iter().map(|c| (c.identifier.as_str(), c)).collect();
    let mut path: Vec<&str> = vec![waiting[0].identifier.as_str()];
    loop {
        let last = by_id[path[path.len() - 1]];
        let next = last
            .depend_on
            .iter()
            .map(String::as_str)
            .find(|d| by_id.contains_key(d))
            .unwrap_or(path[0]);
        if let Some(at) = path.iter().position(|p| *p == next) {
            let mut shown: Vec<&str> = path[at..].to_vec();
            shown.push(next);
            return shown.join(" → ");
        }
        path.push(next);
    }
}

/// Every combination of the matrix's dynamic lists: buildspecs outermost, then images,
/// compute types and each variable's values in the order written.
fn matrix(m: &BatchMatrix) -> Result<Vec<Child>, String> {
    let base = with_env(child(""), &m.env, "batch.build-matrix.static")?;
    let mut combos: Vec<Child> = vec![Child {
        ignore_failure: m.ignore_failure,
        ..base
    }];
    let grow = |combos: Vec<Child>, values: &[String], set: &dyn Fn(&mut Child, &str)| {
        if values.is_empty() {
            return combos;
        }
        let mut out = Vec::with_capacity(combos.len() * values.len());
        for combo in combos {
            for value in values {
                let mut next = combo.clone();
                set(&mut next, value);
                out.push(next);
            }
        }
        out
    };
    combos = grow(combos, &m.buildspecs, &|c, v| {
        c.buildspec = Some(v.to_string())
    });
    check_count("batch.build-matrix", combos.len())?;
    combos = grow(combos, &m.images, &|c, v| c.image = Some(v.to_string()));
    check_count("batch.build-matrix", combos.len())?;
    for compute in &m.compute_types {
        check_compute_type(compute)
            .map_err(|why| format!("batch.build-matrix.dynamic.env.compute-type: {why}"))?;
    }
    combos = grow(combos, &m.compute_types, &|c, v| {
        c.compute_type = Some(v.to_string())
    });
    for (name, values) in &m.variables {
        combos = grow(combos, values, &|c, v| {
            c.variables.push((name.clone(), v.to_string()))
        });
        check_count("batch.build-matrix", combos.len())?;
    }
    check_count("batch.build-matrix", combos.len())?;
    for (n, combo) in combos.iter_mut().enumerate() {
        combo.identifier = format!("matrix_{}", n + 1);
    }
    Ok(combos)
}
