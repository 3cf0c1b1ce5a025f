//! pushbuild's integration tests: one binary, a module per area.

mod artifacts;
mod billing;
mod cli;
mod codecommit;
mod codecommit_standin;
mod codecommit_standin_ops;
mod conformance;
mod conformance_artifacts;
mod corpus;
mod function;
mod function_url;
mod git_server;
mod github_api;
mod hooks;
mod hosted;
mod hostile;
mod loopback;
mod mutate;
mod properties;
mod runtime_api;
mod s3;
mod s3_server;
mod serve;
mod sha256;
mod support;
