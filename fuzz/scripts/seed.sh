#!/usr/bin/env bash
# Seeds module_load's corpus with the conformance guests: one copy per engine index
# (the target's first byte picks the engine), so mutations start from real modules.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/wasmux/target}"
guests=$(ls -d "$target"/debug/build/wasmux-conformance-*/out/guests/wasm32-wasip1/release | head -1)
mkdir -p corpus/module_load
for engine in 0 1 2 3; do
    for guest in "$guests"/hello.wasm "$guests"/probe.wasm; do
        { printf "\\x0$engine"; cat "$guest"; } >"corpus/module_load/$engine-$(basename "$guest")"
    done
done
ls corpus/module_load
