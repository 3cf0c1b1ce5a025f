//! pushbuild's integration tests: one test binary for the whole project.

mod corpus;
