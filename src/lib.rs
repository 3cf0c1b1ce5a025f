//! pushbuild: run CodeBuild-style buildspecs on every push, on AWS Lambda or on a local machine.
//!
//! Data flows one way through the modules:
//! trigger (what to build) ─▶ buildspec (what to run) ─▶ executor (run it) ─▶
//! artifacts (what to keep) ─▶ record + cost + metering. `config` holds the function's settings.

pub mod artifacts;
pub mod billing;
pub mod buildspec;
pub mod cli;
pub mod codebuild;
pub mod config;
pub mod cost;
pub mod executor;
pub mod function;
#[cfg(feature = "server")]
pub mod http;
pub mod index;
pub mod lifecycle;
pub mod metering;
pub mod names;
pub mod pages;
pub mod pipeline;
pub mod record;
pub mod runtimes;
pub mod secret;
pub mod source;
pub mod state;
pub mod status;
pub mod store;
pub mod trigger;
pub mod webhook;
