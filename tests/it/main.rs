//! pushbuild's integration tests: one binary, a module per area.

mod conformance;
mod support;
