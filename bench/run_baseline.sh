#!/usr/bin/env bash
# Times `pushbuild run` on a small build (a command, a background job, one artifact) against an
# earlier commit's build of it, run for run, interleaved, in one go: what a build's bookkeeping
# (keeper, process sweep, log, ledger, record) costs now against then.
# Usage: bench/run_baseline.sh [COMMIT] [RUNS] [empty]   (defaults: the commit before the keeper,
# 31; `empty`: an empty build, one `true` and no artifact: the fixed cost every build pays)
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:-8310dd8}
runs=${2:-31}
tree=target/run-baseline/$commit
if [ ! -x "$tree/target/release/pushbuild" ]; then
  rm -rf "$tree"
  git worktree add --force --detach "$tree" "$commit" >/dev/null
  (cd "$tree" && cargo build --release --locked --bin pushbuild)
fi
cargo build --release --locked --bin pushbuild
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/proj"
if [ "${3:-}" = empty ]; then
  printf 'version: 0.2\nphases:\n  build:\n    commands:\n      - "true"\n' >"$work/proj/buildspec.yml"
else
  printf 'version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi > out.txt\n      - sleep 0.01 &\nartifacts:\n  files: [out.txt]\n' \
    >"$work/proj/buildspec.yml"
fi
declare -A bin=([baseline]="$tree/target/release/pushbuild" [current]="target/release/pushbuild")
for _ in $(seq "$runs"); do
  for name in baseline current; do
    start=$(date +%s%N)
    "${bin[$name]}" run "$work/proj" --store "$work/store-$name" >/dev/null 2>&1
    echo "$name $(( ($(date +%s%N) - start) / 1000 ))"
  done
done >"$work/times"
for name in baseline current; do
  grep "^$name " "$work/times" | cut -d' ' -f2 | sort -n |
    awk -v name="$name" '{ v[NR] = $1 } END { printf "%-8s median %.1f ms  p90 %.1f ms  (%d runs)\n", name, v[int((NR + 1) / 2)] / 1000, v[int(NR * 0.9)] / 1000, NR }'
done
