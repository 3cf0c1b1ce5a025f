//! pushbuild's integration tests: one binary, a module per area.

mod conformance;
mod corpus;
mod support;
