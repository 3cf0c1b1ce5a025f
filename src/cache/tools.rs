//! `codebuild-hash-files`, on every build's `PATH` as on CodeBuild's images, for cache keys
//! such as `npm-$(codebuild-hash-files package-lock.json)`.
//!
//! What it prints: the SHA-256 (64 lowercase hex digits) of the lines `sha256sum` prints for the
//! regular files its globs match under the build's source folder (`$CODEBUILD_SRC_DIR`, else
//! the working folder), sorted by path in bytes' order, each line `<sha256>  <path>`. `**`
//! crosses folders; hidden files match. With no file matched it prints the SHA-256 of nothing
//! and says so on standard error. It is a bash script that needs only bash and coreutils (no
//! `xargs` or `find`: Lambda's runtime has bash and coreutils, not findutils).

use std::io;
use std::path::{Path, PathBuf};

/// The command's name.
pub const HASH_FILES: &str = "codebuild-hash-files";

const SCRIPT: &str = r#"#!/usr/bin/env bash
# codebuild-hash-files GLOB...: the SHA-256 of the sha256sum lines of the matched files (pushbuild).
set -euo pipefail
shopt -s globstar nullglob dotglob
export LC_ALL=C
cd "${CODEBUILD_SRC_DIR:-.}"
IFS=
files=()
for pattern in "$@"; do
  for path in $pattern; do
    if [[ -f $path ]]; then files+=("${path#./}"); fi
  done
done
if ((${#files[@]} == 0)); then
  echo "codebuild-hash-files: no file matches $*" >&2
  printf '' | sha256sum | cut -d' ' -f1
  exit 0
fi
mapfile -d '' -t sorted < <(printf '%s\0' "${files[@]}" | sort -zu)
sha256sum -- "${sorted[@]}" | sha256sum | cut -d' ' -f1
"#;

/// Writes the tools into `dir` (once: a copy already there is kept) and returns `dir`.
pub fn install(dir: &Path) -> io::Result<PathBuf> {
    crate::buildtools::write_tool(dir, HASH_FILES, SCRIPT)?;
    Ok(dir.to_path_buf())
}

/// `env` with `dir` first on its `PATH`.
pub fn on_path(env: &mut Vec<(String, String)>, dir: &Path) {
    crate::buildtools::on_path(env, dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(dir: &Path, tools: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new(tools.join(HASH_FILES))
            .args(args)
            .env("CODEBUILD_SRC_DIR", dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn the_hash_changes_with_a_matched_file_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let tools = install(&dir.path().join("tools")).unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("pkg/a")).unwrap();
        std::fs::write(src.join("package-lock.json"), "{\"v\":1}").unwrap();
        std::fs::write(src.join("pkg/a/yarn.lock"), "x").unwrap();
        std::fs::write(src.join("README"), "r").unwrap();
        let first = hash(&src, &tools, &["package-lock.json", "**/yarn.lock"]);
        assert_eq!(first.len(), 64);
        assert!(
            first
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        std::fs::write(src.join("README"), "changed").unwrap();
        assert_eq!(
            hash(&src, &tools, &["package-lock.json", "**/yarn.lock"]),
            first
        );
        std::fs::write(src.join("pkg/a/yarn.lock"), "y").unwrap();
        assert_ne!(
            hash(&src, &tools, &["package-lock.json", "**/yarn.lock"]),
            first
        );
        // Nothing matched: the hash of nothing.
        assert_eq!(
            hash(&src, &tools, &["nothing.lock"]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
