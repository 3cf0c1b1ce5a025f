#!/usr/bin/env bash
# How much does `pushbuild run` add to a command that prints 1,000,000 lines?
# For each command, RUNS rounds (default 11), each running `sh -c CMD > file` and `pushbuild run`
# on a buildspec whose build phase is CMD (its output logged as printed and echoed to a file),
# one side first in odd rounds and the other in even ones, so both sides see the same moments
# of this machine. It prints the median and
# the best time of each side and the ratio of the medians (the issue's targets are ratios of
# medians), and of the best times.
# The first row, `true`, is an empty build: what every `pushbuild run` costs besides its
# command (starting, the index, the shell and its keeper, the record and the ledger); the last
# column is the ratio of medians with that fixed cost taken off pushbuild's time.
# Usage: bench/log_throughput.sh   (builds pushbuild in release first; PUSHBUILD_BIN=path runs
# that binary instead, to compare another commit's with the same script)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PUSHBUILD_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin pushbuild
  bin=$PWD/target/release/pushbuild
fi
# In $TMPDIR, where `pushbuild run` keeps its work files by default (LOG_BENCH_DIR to change
# it; pushbuild's TMPDIR follows, so its log is renamed into the store rather than copied).
work=$(mktemp -d -p "${LOG_BENCH_DIR:-${TMPDIR:-/tmp}}")
trap 'rm -rf "$work"' EXIT
runs=${RUNS:-11}

elapsed() { # elapsed CMD... : the wall time of CMD, output to a file, in seconds (bash's own
  # clock: no process is started to read it)
  local t0 t1
  t0=$EPOCHREALTIME; "$@" >"$work/out" 2>&1 || true; t1=$EPOCHREALTIME
  echo "$t0 $t1" | awk '{print $2 - $1}'
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
least() { sort -g | head -1; }

commands=(
  "true"
  "seq 1 1000000"
  "awk 'BEGIN { for (i = 0; i < 1000000; i++) print \"compiling unit \" i \" of the project: ok\" }'"
  "i=0; while [ \$i -lt 1000000 ]; do echo \"line \$i\"; i=\$((i+1)); done"
)
printf '%-6s %17s %17s %7s %7s %10s\n' command "sh -c: median,min" "pushbuild: median,min" ratio "of min" "less fixed"
fixed=0
for cmd in "${commands[@]}"; do
  mkdir -p "$work/p"
  printf 'version: 0.2\nenv:\n  shell: /bin/sh\nphases:\n  build:\n    commands:\n      - %s\n' "'${cmd//\'/\'\'}'" >"$work/p/buildspec.yml"
  : >"$work/base" && : >"$work/ours"
  for round in $(seq "$runs"); do
    # Each side goes first in every other round: a run pays for what the one before it left
    # (its output file truncated, its writeback), so neither side always follows the other.
    if ((round % 2)); then sides=(base ours); else sides=(ours base); fi
    for side in "${sides[@]}"; do
      if [ "$side" = base ]; then
        elapsed sh -c "$cmd" >>"$work/base"
      else
        TMPDIR=$work elapsed "$bin" run "$work/p" --store "$work/store" >>"$work/ours"
        # The stored logs (7 and 41 MB a run) go at once: left, their writeback to disk would
        # land in whichever later run it meets.
        find "$work/store/builds" -name build.log -delete
      fi
    done
  done
  lines=$(grep -c . "$work/out" || true)
  base=$(median <"$work/base") base_min=$(least <"$work/base")
  ours=$(median <"$work/ours") ours_min=$(least <"$work/ours")
  if [ "$cmd" = true ]; then fixed=$(echo "$ours $base" | awk '{print $1 - $2}'); fi
  printf '%-6s %8.4f %8.4f %8.4f %8.4f %7.2f %7.2f %10.2f   (%s lines out)\n' "${cmd%% *}" \
    "$base" "$base_min" "$ours" "$ours_min" \
    "$(echo "$ours $base" | awk '{print $1 / $2}')" \
    "$(echo "$ours_min $base_min" | awk '{print $1 / $2}')" \
    "$(echo "$ours $base $fixed" | awk '{print ($1 - $3) / $2}')" "$lines"
done
