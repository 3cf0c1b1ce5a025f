//! Billing metrics: CloudWatch embedded metric format (EMF) records, one JSON object per line,
//! written through a [`MetricSink`]. A [`RunningMeter`] puts each billed minute on record as it
//! starts, so the minutes are counted even when the process dies before the build ends; its
//! [`RunningMeter::finish`] adds the build's totals.
//!
//! Every record has the dimensions `Repository` and `Repository, Branch` in the configured
//! namespace, and a `BuildId` property for finding one build's records in the log.

mod emf;
mod meter;
mod sink;

pub use emf::{Labels, Metric, Unit, branch_name, emf_line};
pub use meter::{Meter, Reserve, RunningMeter};
pub use sink::{MemorySink, MetricSink, NullSink, StdoutSink};

#[cfg(test)]
mod tests;
