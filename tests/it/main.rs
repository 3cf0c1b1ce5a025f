//! pushbuild's integration tests: one binary, a module per area.

mod artifacts;
mod codecommit;
mod codecommit_standin;
mod codecommit_standin_ops;
mod conformance;
mod conformance_artifacts;
mod corpus;
mod support;
