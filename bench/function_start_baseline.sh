#!/usr/bin/env bash
# Times the function's start against an earlier commit's build of it, start for start, in one run.
# Usage: bench/function_start_baseline.sh [COMMIT]   (default: the commit before the HTTP layer)
# The baseline is built in its own worktree under target/, with its own target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:-b82caf9}
tree=target/start-baseline/$commit
if [ ! -x "$tree/target/release/pushbuild-lambda" ]; then
  rm -rf "$tree"
  git worktree add --force --detach "$tree" "$commit" >/dev/null
  # Earlier commits built the function without a feature; later ones need `aws`.
  features=$(grep -q '^aws = ' "$tree/Cargo.toml" && echo "--features aws" || true)
  (cd "$tree" && cargo build --release --locked --bin pushbuild-lambda $features)
fi
START_BENCH_BASELINE="$PWD/$tree/target/release/pushbuild-lambda" \
  exec cargo bench --bench function_start_bench
