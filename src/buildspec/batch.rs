//! The `batch` section, as CodeBuild reads it: `fast-fail`, and one of `build-list`,
//! `build-graph` (tasks, the graph's with `depend-on`), `build-matrix` (a static part and the
//! dynamic lists whose combinations are the children) and `build-fanout` (parallel shards).
//! Each task keeps its path and line, so a bad one is named when the batch is planned.

/// The `batch` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    pub fast_fail: bool,
    /// Which of `build-list`, `build-matrix`, `build-graph`, `build-fanout` is present, if any.
    pub kind: Option<String>,
    /// `build-list` or `build-graph`: the tasks, in file order.
    pub tasks: Vec<BatchTask>,
    pub matrix: Option<BatchMatrix>,
    pub fanout: Option<BatchFanout>,
    /// The line of `batch:`.
    pub line: usize,
}

/// One task of a `build-list` or `build-graph`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchTask {
    pub identifier: String,
    /// Another buildspec for this task, relative to the source.
    pub buildspec: Option<String>,
    pub env: BatchEnv,
    pub ignore_failure: bool,
    /// The graph's tasks this one waits for.
    pub depend_on: Vec<String>,
    /// Where it is: `batch.build-graph[2]`, and its line.
    pub path: String,
    pub line: usize,
}

/// A task's `env`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchEnv {
    pub variables: Vec<(String, String)>,
    pub compute_type: Option<String>,
    pub image: Option<String>,
    pub privileged_mode: bool,
    /// `type` (`LINUX_CONTAINER`, `ARM_CONTAINER`, ...).
    pub kind: Option<String>,
}

/// `build-matrix`: every combination of the dynamic lists is a child, with the static part.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchMatrix {
    /// `static.ignore-failure`.
    pub ignore_failure: bool,
    /// `static.env`.
    pub env: BatchEnv,
    /// `dynamic.buildspec`.
    pub buildspecs: Vec<String>,
    /// `dynamic.env.variables`: each name with its values.
    pub variables: Vec<(String, Vec<String>)>,
    /// `dynamic.env.image`.
    pub images: Vec<String>,
    /// `dynamic.env.compute-type`.
    pub compute_types: Vec<String>,
    pub line: usize,
}

/// `build-fanout`: `parallelism` shards of the same build.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchFanout {
    pub parallelism: u64,
    pub ignore_failure: bool,
    pub line: usize,
}
