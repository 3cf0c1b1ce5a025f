#!/usr/bin/env bash
# The fault tests over and over, each round with a new seed, for SOAK_SECONDS (an hour by
# default): a round that fails prints its seed, and `PUSHBUILD_FAULT_SEED=<seed> cargo test
# --all-features --test it faults` replays it. Ends with the rounds run and the seeds that
# failed (exit 1 when any did).
set -euo pipefail
cd "$(dirname "$0")/.."
soak=${SOAK_SECONDS:-3600}
cargo test --all-features --test it --no-run
end=$((SECONDS + soak))
rounds=0
failed=()
while [ "$SECONDS" -lt "$end" ]; do
  seed=$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')
  rounds=$((rounds + 1))
  if PUSHBUILD_FAULT_SEED=$seed cargo test --all-features --test it -q faults >"/tmp/soak-$seed.log" 2>&1; then
    rm -f "/tmp/soak-$seed.log"
  else
    echo "round $rounds failed: seed $seed (its output: /tmp/soak-$seed.log)"
    failed+=("$seed")
  fi
done
echo "soak: $rounds rounds in ${soak} s, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ "${#failed[@]}" -eq 0 ]
