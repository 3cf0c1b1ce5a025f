//! Preparing one build, in two steps with the build's beginning (its number and first minute)
//! between them: resolve the commit and honour `[skip ci]`; then fetch the source into an empty
//! work directory and load the buildspec. The answers say what to run, why it cannot run (a
//! FAILED build whose record says why), or that the commit asks not to be built. Only
//! pushbuild's own failures (a host that does not answer, a work directory that cannot be made)
//! are errors.

use std::path::Path;

use super::BuildError;
use crate::buildspec;
use crate::config::{BuildDirs, Config};
use crate::executor::{ContextCode, PhaseContext};
use crate::names::{CommitId, ProjectName};
use crate::pipeline::{Ready, Work};
use crate::source::{FetchSummary, ResolvedCommit, Source, SourceError};
use crate::trigger::{self, BuildTarget};

/// What resolving a build's commit gave.
pub(super) enum Resolution {
    /// The commit to fetch and build.
    Resolved(ResolvedCommit),
    /// The commit could not be had: a FAILED build whose record says why.
    CannotStart(Work),
    /// The commit's message asks for no build (`[skip ci]`): nothing is recorded.
    SkipCi(ResolvedCommit),
}

/// Resolves the commit `target` asks for and honours `[skip ci]`.
pub(super) async fn resolve<S: Source>(
    source: &S,
    target: &BuildTarget,
) -> Result<Resolution, BuildError> {
    let resolved = match source.resolve(&target.source, &target.to_resolve()).await {
        Ok(resolved) => resolved,
        Err(err) => {
            return cannot_start(&target.project, err, Vec::new()).map(Resolution::CannotStart);
        }
    };
    if trigger::skip_ci(&resolved.message) {
        return Ok(Resolution::SkipCi(resolved));
    }
    Ok(Resolution::Resolved(resolved))
}

/// Fetches the resolved commit into the build's empty source directory and loads its buildspec:
/// what the build runs, or why it cannot run.
pub(super) async fn fetch<S: Source>(
    source: &S,
    config: &Config,
    target: &BuildTarget,
    dirs: &BuildDirs,
    resolved: &ResolvedCommit,
) -> Result<Work, BuildError> {
    let repository = &target.project;
    let src = dirs.src.clone();
    for dir in [&src, &dirs.home] {
        empty_dir(dir).map_err(|source| BuildError::WorkDir {
            path: dir.clone(),
            source,
        })?;
    }
    // Removals of earlier builds' directories give way while this source is written.
    let fetching = super::cleanup::Fetching::begin();
    let fetched = source
        .fetch(&target.source, &resolved.commit_id, &src)
        .await;
    drop(fetching);
    let fetched = match fetched {
        Ok(fetched) => fetched,
        Err(err) => return cannot_start(repository, err, Vec::new()),
    };
    let notes = fetch_notes(&resolved.commit_id, &fetched);
    let spec_path = target.buildspec.as_deref().unwrap_or(&config.buildspec);
    // Messages name the buildspec by its path in the repository.
    let parsed = match buildspec::load_named(&src.join(spec_path), spec_path) {
        Ok(parsed) => parsed,
        Err(err) => {
            let context = PhaseContext::new(ContextCode::YamlFileError, err.to_string());
            return Ok(Work::CannotStart { context, notes });
        }
    };
    let ready = Ready {
        overrides: target.env_overrides.clone(),
        notes,
        home: Some(dirs.home.clone()),
        buildspec_path: Some(spec_path.to_string()),
        ..Ready::new(parsed, src)
    };
    Ok(Work::Run(Box::new(ready)))
}

/// A source error that is the build's input's fault becomes a FAILED build; any other is
/// pushbuild's failure, worth a retry.
fn cannot_start(
    repository: &ProjectName,
    err: SourceError,
    notes: Vec<String>,
) -> Result<Work, BuildError> {
    if !err.is_user_error() {
        return Err(BuildError::Source {
            repository: repository.to_string(),
            source: err,
        });
    }
    let context = PhaseContext::new(ContextCode::ClientError, err.to_string());
    Ok(Work::CannotStart { context, notes })
}

fn fetch_notes(commit: &CommitId, fetched: &FetchSummary) -> Vec<String> {
    let took = match fetched.stage_line() {
        line if line.is_empty() => String::new(),
        line => format!(" ({line})"),
    };
    let mut notes = vec![format!(
        "Fetched commit {commit}: {} files, {} bytes{took}",
        fetched.files, fetched.bytes
    )];
    notes.extend(fetched.notes.iter().cloned());
    notes
}

/// Removes `dir`'s contents (or makes it).
fn empty_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    std::fs::create_dir_all(dir)
}
