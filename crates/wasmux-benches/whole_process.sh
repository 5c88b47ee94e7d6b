#!/usr/bin/env bash
# Whole-process cold starts, one hyperfine run: `wasmux run` of the hello bundle on
# every engine of the release CLI, cold (empty precompile cache) and warm (cache hit),
# beside a static native hello (fork+exec: the floor) and `python3 -c pass`.
#
#   crates/wasmux-benches/whole_process.sh                 # the CLI's default engines
#   FEATURES=wasmtime,wasmer,wasm3,wamr crates/wasmux-benches/whole_process.sh   # more (libclang, cmake)
#   FEATURES=wasmedge,wasm3 crates/wasmux-benches/whole_process.sh   # WasmEdge: see docs/engines.md
#   RUNS=100 crates/wasmux-benches/whole_process.sh
#
# Prints a Markdown table of medians with each command's ratio to the native floor.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wasmux/target}"
runs="${RUNS:-50}"

if ! command -v hyperfine >/dev/null; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq hyperfine >/dev/null
fi

features=()
runner=""
if [ -n "${FEATURES:-}" ]; then
    features=(--no-default-features --features "$FEATURES")
    if [[ "$FEATURES" == *wasmedge* ]]; then
        eval "$(scripts/wasmedge-env.sh)"
        runner="$WASMEDGE_RUN "
    fi
fi
cargo build --quiet --release -p wasmux-cli "${features[@]}"
wasmux="$runner$CARGO_TARGET_DIR/release/wasmux"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gcc -O2 -static -o "$work/hello-native" crates/wasmux-benches/hello.c
bundle="$PWD/examples/hello"

args=(--shell=none --runs "$runs" --warmup 3 --export-json "$work/times.json" --style basic)
add() { args+=(--command-name "$1" --prepare "$2" "$3"); }
add "native static hello (fork+exec)" "true" "$work/hello-native"
add "python3 -c pass" "true" "python3 -c pass"
add "wasmux --version (the binary's own start)" "true" "$wasmux --version"
engines="$($wasmux engines)"
for engine in $(awk '{print $1}' <<<"$engines"); do
    cache="$work/cache-$engine"
    run="$wasmux run --engine $engine --cache-dir $cache $bundle"
    if grep -q "^$engine .*precompile: yes" <<<"$engines"; then
        add "wasmux run, $engine, cold (empty cache)" "rm -rf $cache" "$run"
        add "wasmux run, $engine, warm (cache hit)" "true" "$run"
    else
        add "wasmux run, $engine (interpreter: nothing to cache)" "true" "$run"
    fi
done
hyperfine "${args[@]}" >&2

python3 - "$work/times.json" "$(nproc)" <<'PY'
import json, sys, statistics
results = json.load(open(sys.argv[1]))["results"]
floor = results[0]["median"]
print(f"| command ({sys.argv[2]} cores) | median | ratio to native |")
print("|---|---:|---:|")
for r in results:
    print(f"| {r['command']} | {r['median'] * 1000:.2f} ms | {r['median'] / floor:.1f}x |")
PY
