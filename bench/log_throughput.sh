#!/usr/bin/env bash
# How much does `pushbuild run` add to a command that prints 1,000,000 lines?
# For each command: the best of 3 runs of `sh -c CMD > file`, then of `pushbuild run` on a
# buildspec whose build phase is CMD (its output logged as printed and echoed to a file).
# The first row, `true`, is an empty build: what every `pushbuild run` costs before its first
# line (starting, the index, the shell and its keeper, the record and the ledger); the last
# column is the ratio with that fixed cost taken off pushbuild's time.
# Usage: bench/log_throughput.sh   (builds pushbuild in release first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin pushbuild
bin=$PWD/target/release/pushbuild
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runs=${RUNS:-3}

best_of() { # best_of CMD... : prints the best wall time in seconds
  local best=""
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s.%N); "$@" >"$work/out" 2>&1 || true; t1=$(date +%s.%N)
    best=$(echo "$t0 $t1 $best" | awk '{d=$2-$1; if ($3=="" || d<$3) print d; else print $3}')
  done
  echo "$best"
}

commands=(
  "true"
  "seq 1 1000000"
  "awk 'BEGIN { for (i = 0; i < 1000000; i++) print \"compiling unit \" i \" of the project: ok\" }'"
  "i=0; while [ \$i -lt 1000000 ]; do echo \"line \$i\"; i=\$((i+1)); done"
)
printf '%-14s %10s %10s %7s %9s\n' command "sh -c (s)" "pushbuild" ratio "less fixed"
fixed=0
for cmd in "${commands[@]}"; do
  mkdir -p "$work/p"
  printf 'version: 0.2\nenv:\n  shell: /bin/sh\nphases:\n  build:\n    commands:\n      - %s\n' "'${cmd//\'/\'\'}'" >"$work/p/buildspec.yml"
  base=$(best_of sh -c "$cmd")
  ours=$(best_of "$bin" run "$work/p" --store "$work/store")
  lines=$(grep -c . "$work/out" || true)
  if [ "$cmd" = true ]; then fixed=$(echo "$ours $base" | awk '{print $1-$2}'); fi
  printf '%-14s %10.3f %10.3f %7.2f %9.2f   (%s lines out)\n' "${cmd%% *}" "$base" "$ours" \
    "$(echo "$ours $base" | awk '{print $1/$2}')" "$(echo "$ours $base $fixed" | awk '{print ($1-$3)/$2}')" "$lines"
done
