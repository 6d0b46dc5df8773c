#!/usr/bin/env bash
# Runs every fuzz target for a set time: `fuzz/run.sh [seconds per target]` (default 60).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The toolchain here is stable, so the
# targets are built without a sanitizer (`--sanitizer none`, which cargo-fuzz allows on stable:
# a panic is still a finding, only memory errors in unsafe code would go unseen) and with
# RUSTC_BOOTSTRAP=1, which lets stable rustc accept the `-Z` flags cargo-fuzz passes.
# One job per target (-j1 equivalent: a single fuzzing process), new inputs go to a scratch
# directory, not into the committed seeds: copy a finding into fuzz/corpus/<target>/ by hand
# once it is fixed, so that `cargo test` replays it. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
targets=(uplink_protobuf owntracks_json ws_client_frame mqtt_connect)
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"

if ! cargo fuzz --help >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

status=0
for t in "${targets[@]}"; do
  scratch="target/corpus-work/$t"
  mkdir -p "$scratch" "artifacts/$t"
  echo "== $t: ${seconds}s"
  set +e
  cargo fuzz run --sanitizer none "$t" "$scratch" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    >"target/fuzz-$t.log" 2>&1
  rc=$?
  set -e
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added|==[0-9]+== ERROR|SUMMARY)' \
    "target/fuzz-$t.log" || true
  if [ "$rc" -ne 0 ]; then
    echo "== $t: FAILED (exit $rc; see fuzz/target/fuzz-$t.log and fuzz/artifacts/$t/)"
    status=1
  fi
done
exit "$status"
