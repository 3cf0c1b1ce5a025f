//! Where a build's source comes from. For `pushbuild run` it is a directory on disk; `local`
//! reads what git knows of it, for the `CODEBUILD_*` source variables.

pub mod local;
