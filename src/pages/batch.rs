//! A batch's page: its status, its children (each linked to its build, with its state and why
//! it did not run) and its graph, drawn here as SVG: one column per step of the graph (a child
//! stands right of everything it depends on), an arrow from each dependency, each box coloured
//! by its child's state. Served while the batch runs (from the index) and once it has ended
//! (from its record).

use std::fmt::Write;

use super::{build_href, encode, escape, page};
use crate::batch::{BatchRecord, ChildEnd};

const BOX_W: usize = 150;
const BOX_H: usize = 34;
const GAP_X: usize = 60;
const GAP_Y: usize = 14;

/// The link to a batch's page.
pub fn batch_href(project: &str, batch_id: &str) -> String {
    format!("/batches/{}/{}", encode(project), encode(batch_id))
}

/// The page of `record`.
pub fn batch_page(record: &BatchRecord) -> String {
    let status = record.status.as_str();
    let mut body = format!(
        "<h1>{} <span class=\"s {status}\" id=\"status\">{status}</span></h1>",
        escape(&format!("Batch of {}", record.project))
    );
    let ended = |state: &str| {
        record
            .children
            .iter()
            .filter(|c| c.status.as_str() == state)
            .count()
    };
    let _ = write!(
        body,
        "<p>Batch <code>{}</code> (<a href=\"{}\">its push's build</a>), started {}{}; {} \
         build(s): {} succeeded, {} failed, {} skipped{}.</p>",
        escape(&record.batch_id),
        escape(&build_href(&record.project, &record.batch_id)),
        record.start_time.format("%Y-%m-%d %H:%M:%S UTC"),
        record.end_time.map_or(String::new(), |end| format!(
            ", ended {}",
            end.format("%H:%M:%S UTC")
        )),
        record.children.len(),
        ended("SUCCEEDED"),
        ended("FAILED") + ended("TIMED_OUT"),
        ended("SKIPPED"),
        if record.fast_fail { "; fast-fail" } else { "" },
    );
    if let Some(why) = &record.stopping {
        let _ = write!(
            body,
            "<p id=\"stopping\">Stopped starting builds: {}</p>",
            escape(why)
        );
    }
    if let Some(earlier) = &record.retries {
        let _ = write!(
            body,
            "<p id=\"retries\">Runs batch <a href=\"{}\">{}</a> again: what succeeded there is \
             kept, the rest runs.</p>",
            escape(&batch_href(&record.project, earlier)),
            escape(earlier)
        );
    }
    body.push_str("<h2>Graph</h2><div class=\"wrap\">");
    body.push_str(&graph_svg(record));
    body.push_str(
        "</div><h2>Builds</h2><div class=\"wrap\"><table id=\"children\"><tr><th>Build</th>\
                   <th>Status</th><th>Depends on</th><th>Why not run</th></tr>",
    );
    for child in &record.children {
        let name = match &child.build_id {
            Some(id) => format!(
                "<a href=\"{}\">{}</a>",
                escape(&build_href(&record.project, id)),
                escape(&child.identifier)
            ),
            None => escape(&child.identifier),
        };
        let status = child.status.as_str();
        let _ = write!(
            body,
            "<tr><td>{name}{}</td><td class=\"s {status}\">{status}</td><td>{}</td><td>{}</td></tr>",
            if child.ignore_failure {
                " <small>(may fail)</small>"
            } else {
                ""
            },
            escape(&child.depend_on.join(", ")),
            escape(child.reason.as_deref().unwrap_or("")),
        );
    }
    body.push_str("</table></div>");
    page(&format!("Batch {}", record.batch_id), &body)
}

/// Each child's column: 0 for one that depends on nothing, else one more than its deepest
/// dependency's. A dependency that is not there (or a cycle, which planning refuses) counts 0.
fn columns(children: &[ChildEnd]) -> Vec<usize> {
    let mut column = vec![0usize; children.len()];
    // At most one pass per child: each pass settles at least one more step of the graph.
    for _ in 0..children.len() {
        let mut changed = false;
        for i in 0..children.len() {
            let deepest = children[i]
                .depend_on
                .iter()
                .filter_map(|dep| children.iter().position(|c| &c.identifier == dep))
                .map(|d| column[d] + 1)
                .max()
                .unwrap_or(0);
            if deepest != column[i] && deepest < children.len() {
                column[i] = deepest;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    column
}

/// The graph as SVG: a box per child, an arrow per dependency.
fn graph_svg(record: &BatchRecord) -> String {
    let children = &record.children;
    let column = columns(children);
    let mut row = vec![0usize; children.len()];
    let mut filled = vec![0usize; children.len() + 1];
    for (i, c) in column.iter().enumerate() {
        row[i] = filled[*c];
        filled[*c] += 1;
    }
    let at = |i: usize| (column[i] * (BOX_W + GAP_X), row[i] * (BOX_H + GAP_Y));
    let width = (column.iter().max().map_or(0, |c| c + 1)) * (BOX_W + GAP_X);
    let height = filled.iter().max().copied().unwrap_or(0) * (BOX_H + GAP_Y);
    let mut svg = format!(
        "<svg id=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"the batch's graph\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" \
         markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#57606a\"/></marker></defs>"
    );
    for (i, child) in children.iter().enumerate() {
        for dep in &child.depend_on {
            let Some(d) = children.iter().position(|c| &c.identifier == dep) else {
                continue;
            };
            let ((x1, y1), (x2, y2)) = (at(d), at(i));
            let _ = write!(
                svg,
                "<line class=\"edge\" data-from=\"{}\" data-to=\"{}\" x1=\"{}\" y1=\"{}\" x2=\"{}\" \
                 y2=\"{}\" stroke=\"#57606a\" marker-end=\"url(#arrow)\"/>",
                escape(dep),
                escape(&child.identifier),
                x1 + BOX_W,
                y1 + BOX_H / 2,
                x2,
                y2 + BOX_H / 2
            );
        }
    }
    for (i, child) in children.iter().enumerate() {
        let (x, y) = at(i);
        let status = child.status.as_str();
        let _ = write!(
            svg,
            "<g class=\"node\" data-id=\"{id}\" data-status=\"{status}\"><rect x=\"{x}\" y=\"{y}\" \
             width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\" fill=\"{}\" stroke=\"#d0d7de\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#fff\">{id}</text>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#fff\">{status}</text></g>",
            fill(status),
            x + 6,
            y + 14,
            x + 6,
            y + 28,
            id = escape(&child.identifier),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A box's colour for its child's state.
fn fill(status: &str) -> &'static str {
    match status {
        "SUCCEEDED" => "#2da44e",
        "FAILED" | "TIMED_OUT" => "#cf222e",
        "IN_PROGRESS" | "QUEUED" => "#9a6700",
        _ => "#57606a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Child;
    use crate::state::BuildState;

    fn child(id: &str, deps: &[&str]) -> Child {
        Child {
            identifier: id.into(),
            buildspec: None,
            variables: Vec::new(),
            depend_on: deps.iter().map(|d| d.to_string()).collect(),
            ignore_failure: false,
            compute_type: None,
            image: None,
            privileged_mode: false,
            shard: None,
        }
    }

    #[test]
    fn the_graph_puts_each_child_right_of_what_it_depends_on() {
        let children = [
            child("d", &["b", "c"]),
            child("a", &[]),
            child("b", &["a"]),
            child("c", &["a"]),
        ];
        let mut record = BatchRecord::new("b-1", "web", false, &children);
        record.children[1].status = BuildState::Succeeded;
        record.children[1].build_id = Some("build-a".into());
        record.children[2].status = BuildState::Failed;
        record.children[0].status = BuildState::Skipped;
        record.children[0].reason = Some("depends on `b`, which did not succeed".into());
        assert_eq!(columns(&record.children), [2, 0, 1, 1]);
        let html = batch_page(&record);
        assert_eq!(html.matches("class=\"edge\"").count(), 4);
        assert!(html.contains("data-from=\"a\" data-to=\"b\""));
        assert!(html.contains("data-id=\"b\" data-status=\"FAILED\""));
        assert!(html.contains("href=\"/builds/web/build-a\">a</a>"));
        assert!(html.contains("depends on `b`, which did not succeed"));
        assert!(html.contains("1 succeeded, 1 failed, 1 skipped"));
    }

    #[test]
    fn identifiers_and_reasons_are_escaped() {
        let mut record = BatchRecord::new("b-1", "web", true, &[child("x", &[])]);
        record.children[0].reason = Some("<script>".into());
        record.stopping = Some("fast-fail: `<b>` ended FAILED".into());
        let html = batch_page(&record);
        assert!(!html.contains("<script>") && !html.contains("`<b>`"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
