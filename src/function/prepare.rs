//! Preparing one build: resolve the commit, honour `[skip ci]`, fetch the source into an empty
//! work directory, load the buildspec. The answer is what to run, why it cannot run (a FAILED
//! build whose record says why), or that the commit asks not to be built. Only pushbuild's own
//! failures (a host that does not answer, a work directory that cannot be made) are errors.

use std::path::Path;

use super::FunctionError;
use crate::buildspec;
use crate::config::{BuildDirs, Config};
use crate::executor::{ContextCode, PhaseContext};
use crate::names::{CommitId, ProjectName};
use crate::pipeline::{Ready, Work};
use crate::source::{FetchSummary, ResolvedCommit, Source, SourceError};
use crate::trigger::{self, BuildTarget};

/// What preparing a build gave.
pub(super) enum Prepared {
    /// Build: the work (run, or record why it cannot run), and the commit when it was resolved.
    Build {
        work: Work,
        resolved: Option<ResolvedCommit>,
    },
    /// The commit's message asks for no build (`[skip ci]`): nothing is recorded.
    SkipCi(ResolvedCommit),
}

/// Prepares `target` in its build's directories.
pub(super) async fn prepare<S: Source>(
    source: &S,
    config: &Config,
    target: &BuildTarget,
    dirs: &BuildDirs,
) -> Result<Prepared, FunctionError> {
    let repository = &target.repository;
    let resolved = match source.resolve(repository, &target.to_resolve()).await {
        Ok(resolved) => resolved,
        Err(err) => return cannot_start(repository, err, Vec::new(), None),
    };
    if trigger::skip_ci(&resolved.message) {
        return Ok(Prepared::SkipCi(resolved));
    }
    let src = dirs.src.clone();
    for dir in [&src, &dirs.home] {
        empty_dir(dir).map_err(|source| FunctionError::WorkDir {
            path: dir.clone(),
            source,
        })?;
    }
    let fetched = match source.fetch(repository, &resolved.commit_id, &src).await {
        Ok(fetched) => fetched,
        Err(err) => return cannot_start(repository, err, Vec::new(), Some(resolved)),
    };
    let notes = fetch_notes(&resolved.commit_id, &fetched);
    let spec_path = target.buildspec.as_deref().unwrap_or(&config.buildspec);
    // Messages name the buildspec by its path in the repository.
    let parsed = match buildspec::load_named(&src.join(spec_path), spec_path) {
        Ok(parsed) => parsed,
        Err(err) => {
            let context = PhaseContext::new(ContextCode::YamlFileError, err.to_string());
            return Ok(unbuildable(context, notes, resolved));
        }
    };
    let env = &parsed.spec.env;
    if !env.parameter_store.is_empty() || !env.secrets_manager.is_empty() {
        let context = PhaseContext::new(
            ContextCode::ClientError,
            "env.parameter-store and env.secrets-manager are not supported by the function yet; \
             pass such values as environment overrides",
        );
        return Ok(unbuildable(context, notes, resolved));
    }
    let ready = Ready {
        overrides: target.env_overrides.clone(),
        notes,
        home: Some(dirs.home.clone()),
        ..Ready::new(parsed, src)
    };
    Ok(Prepared::Build {
        work: Work::Run(Box::new(ready)),
        resolved: Some(resolved),
    })
}

/// A source error that is the build's input's fault becomes a FAILED build; any other is
/// pushbuild's failure, worth a retry.
fn cannot_start(
    repository: &ProjectName,
    err: SourceError,
    notes: Vec<String>,
    resolved: Option<ResolvedCommit>,
) -> Result<Prepared, FunctionError> {
    if !err.is_user_error() {
        return Err(FunctionError::Source {
            repository: repository.to_string(),
            source: err,
        });
    }
    let context = PhaseContext::new(ContextCode::ClientError, err.to_string());
    Ok(Prepared::Build {
        work: Work::CannotStart { context, notes },
        resolved,
    })
}

fn unbuildable(context: PhaseContext, notes: Vec<String>, resolved: ResolvedCommit) -> Prepared {
    Prepared::Build {
        work: Work::CannotStart { context, notes },
        resolved: Some(resolved),
    }
}

fn fetch_notes(commit: &CommitId, fetched: &FetchSummary) -> Vec<String> {
    let mut notes = vec![format!(
        "Fetched commit {commit}: {} files, {} bytes",
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
