#!/usr/bin/env bash
# Times artifact packaging (select + write_zip) against `zip -r -q -1` on 2,000 files / 200 MiB.
# Usage: bench/artifacts.sh   (env: ZIP_BENCH_FILES, ZIP_BENCH_MIB, ZIP_BENCH_RUNS)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v zip >/dev/null || { echo "needs Info-ZIP's zip (apt-get install zip)" >&2; exit 1; }
exec cargo bench --bench zip_bench "$@"
