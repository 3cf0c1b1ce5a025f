//! pushbuild's integration tests: one binary, a module per area.

mod artifacts;
mod conformance;
mod conformance_artifacts;
mod corpus;
mod s3;
mod s3_server;
mod support;
