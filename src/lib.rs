//! pushbuild: run CodeBuild-style buildspecs on every push, on AWS Lambda or on a local machine.
//!
//! The adapters (`cli`, `http`, `function`) turn a command, a request or an event into what to
//! build; `lifecycle` owns each build's life (claim, resolve, begin, fetch, place, run or hand
//! over, finish, report); below it data flows one way: trigger (what to build) ─▶ buildspec
//! (what to run) ─▶ executor (run it) ─▶ artifacts (what to keep) ─▶ record + cost + metering.
//! `docs/architecture.md` draws the modules by layer; `.ci/layers` holds the code to them.

pub mod artifacts;
pub mod batch;
pub mod billing;
pub mod buildspec;
pub mod buildtools;
pub mod cache;
pub mod cli;
pub mod codebuild;
pub mod codepipeline;
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
pub mod reports;
pub mod runtimes;
pub mod secret;
pub mod source;
pub mod state;
pub mod status;
pub mod store;
pub mod trigger;
pub mod vault;
pub mod webhook;
