//! The fan-out's tools, on every build's `PATH` as on CodeBuild's images:
//!
//! - `codebuild-glob-search GLOB...` prints the regular files its globs match under the working
//!   folder, one a line, sorted in bytes' order, without duplicates (`**` crosses folders,
//!   hidden files match).
//! - `codebuild-tests-run --test-command CMD --files-search CMD [--sharding-strategy
//!   equal-distribution|stability]` runs the files search, keeps this shard's share of the
//!   files it prints, exports them as `CODEBUILD_CURRENT_SHARD_FILES` (one a line) and runs
//!   the test command with them appended (shell-quoted). Which shard: `PUSHBUILD_SHARD_INDEX`
//!   (from 0) of `PUSHBUILD_SHARD_COUNT` (a build that is no shard is shard 0 of 1: it runs
//!   every file). `equal-distribution` sorts the files and gives each shard one contiguous
//!   run of them, the runs' sizes differing by at most one; `stability` gives a file to the
//!   shard its name's SHA-256 picks, so adding a file moves no other. A shard with no file runs
//!   nothing and succeeds.

use std::io;
use std::path::Path;

/// The tools' names.
pub const TESTS_RUN: &str = "codebuild-tests-run";
pub const GLOB_SEARCH: &str = "codebuild-glob-search";

const GLOB_SEARCH_SCRIPT: &str = r#"#!/usr/bin/env bash
# codebuild-glob-search GLOB...: the regular files the globs match, one a line (pushbuild).
set -euo pipefail
shopt -s globstar nullglob dotglob
export LC_ALL=C
IFS=
found=()
for pattern in "$@"; do
  for path in $pattern; do
    if [[ -f $path ]]; then found+=("${path#./}"); fi
  done
done
if ((${#found[@]} > 0)); then printf '%s\n' "${found[@]}" | sort -u; fi
"#;

const TESTS_RUN_SCRIPT: &str = r#"#!/usr/bin/env bash
# codebuild-tests-run: this shard's test files, run by the test command (pushbuild).
set -euo pipefail
export LC_ALL=C
usage='codebuild-tests-run --test-command CMD --files-search CMD [--sharding-strategy equal-distribution|stability]'
test_command='' files_search='' strategy=equal-distribution
while (($# > 0)); do
  case $1 in
    --*=*) opt=${1%%=*}; value=${1#*=}; shift ;;
    --test-command|--files-search|--sharding-strategy)
      if (($# < 2)); then echo "codebuild-tests-run: $1 needs a value; usage: $usage" >&2; exit 2; fi
      opt=$1; value=$2; shift 2 ;;
    *) echo "codebuild-tests-run: unknown argument '$1'; usage: $usage" >&2; exit 2 ;;
  esac
  case $opt in
    --test-command) test_command=$value ;;
    --files-search) files_search=$value ;;
    --sharding-strategy) strategy=$value ;;
    *) echo "codebuild-tests-run: unknown option '$opt'; usage: $usage" >&2; exit 2 ;;
  esac
done
if [[ -z $test_command || -z $files_search ]]; then
  echo "codebuild-tests-run: --test-command and --files-search are required; usage: $usage" >&2
  exit 2
fi
case $strategy in
  equal-distribution|stability) ;;
  *) echo "codebuild-tests-run: --sharding-strategy '$strategy' is not equal-distribution or stability" >&2; exit 2 ;;
esac
index=${PUSHBUILD_SHARD_INDEX:-0}
count=${PUSHBUILD_SHARD_COUNT:-1}
if ! [[ $index =~ ^[0-9]+$ && $count =~ ^[1-9][0-9]*$ ]] || ((index >= count)); then
  echo "codebuild-tests-run: shard index $index of $count is not a shard" >&2
  exit 2
fi
listed=$(eval "$files_search")
all=()
while IFS= read -r file; do
  if [[ -n $file ]]; then all+=("$file"); fi
done < <(printf '%s\n' "$listed" | sort -u)
mine=()
total=${#all[@]}
if [[ $strategy == equal-distribution ]]; then
  from=$((index * total / count))
  to=$(((index + 1) * total / count))
  if ((to > from)); then mine=("${all[@]:from:to-from}"); fi
else
  for file in "${all[@]}"; do
    hash=$(printf '%s' "$file" | sha256sum | cut -c1-8)
    if ((16#$hash % count == index)); then mine+=("$file"); fi
  done
fi
echo "codebuild-tests-run: shard $((index + 1)) of $count ($strategy): ${#mine[@]} of $total test file(s)" >&2
if ((${#mine[@]} == 0)); then exit 0; fi
CODEBUILD_CURRENT_SHARD_FILES=$(printf '%s\n' "${mine[@]}")
export CODEBUILD_CURRENT_SHARD_FILES
quoted=$(printf '%q ' "${mine[@]}")
eval "$test_command $quoted"
"#;

/// Writes the tools into `dir`.
pub fn install(dir: &Path) -> io::Result<()> {
    crate::buildtools::write_tool(dir, GLOB_SEARCH, GLOB_SEARCH_SCRIPT)?;
    crate::buildtools::write_tool(dir, TESTS_RUN, TESTS_RUN_SCRIPT)
}
