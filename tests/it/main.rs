//! pushbuild's integration tests: one binary, a module per area.

mod codecommit;
mod codecommit_standin;
mod codecommit_standin_ops;
mod conformance;
mod support;
