#!/usr/bin/env bash
# Runs the differential target for SECONDS (default 600) on one core, at the lowest
# priority, and writes every command the engines disagreed on to
# crates/wasmux-conformance/fuzz-regressions/differential/ for the test command to replay.
# Built without a sanitizer: the comparison is the oracle, and the C engines' code is
# not instrumented by Rust's sanitizer flags anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
target_dir="${CARGO_FUZZ_TARGET_DIR:-$HOME/.cache/wasmux/fuzz-target}"
found="$(pwd)/../crates/wasmux-conformance/fuzz-regressions/differential"
mkdir -p "$found" corpus/differential artifacts/differential
WASMUX_GUESTS_TOOLCHAIN="${WASMUX_GUESTS_TOOLCHAIN:-stable}" WASMUX_DIFF_SAVE="$found" \
    nice -n 19 cargo +nightly fuzz run -s none \
    --target-dir "$target_dir" differential corpus/differential -- \
    -max_total_time="$seconds" -timeout=120 -rss_limit_mb=4096 -len_control=0 \
    -artifact_prefix=artifacts/differential/ -print_final_stats=1 \
    -fork=1 -ignore_crashes=1 2>&1 | tee "artifacts/differential.log"
ls "$found"
