//! Who a local build is: the directory's project, and what git says of it.

use std::path::Path;

use crate::names::{RefKind, RepositoryName, full_ref};
use crate::pipeline::BuildIdentity;
use crate::source::local;

/// Who the build is: the directory's project, and what git says of it.
pub(super) fn identity(project: RepositoryName, dir: &Path) -> BuildIdentity {
    let git = local::git_info(dir);
    let user = std::env::var("USER").unwrap_or_else(|_| "local".to_string());
    BuildIdentity {
        source_version: git
            .branch
            .clone()
            .or_else(|| git.commit.as_ref().map(ToString::to_string)),
        commit: git.commit.clone(),
        reference: git.branch.as_ref().map(|b| full_ref(RefKind::Branch, b)),
        source_repo_url: git
            .remote_url
            .clone()
            .or_else(|| Some(format!("file://{}", dir.display()))),
        ..BuildIdentity::new(project.into(), format!("pushbuild-cli/{user}"))
    }
}
