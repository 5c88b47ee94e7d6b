#!/usr/bin/env python3
"""Whole-process timings of `wasmux run`, every engine side by side in one run.

Usage: crates/wasmux-benches/whole_process.py WASMUX PROBE_WASM HELLO_WASM [RUNS]

WASMUX is the command, split like a shell would: a build linked to the Debian-package
WasmEdge runs as "$WASMEDGE_RUN target/release/wasmux" (see scripts/wasmedge-env.sh).

Runs, interleaved so machine noise hits every engine alike: `probe primes 20000000`
(compile + a compute-bound sieve), `probe primes 0` (compile + start only) and hello,
on each engine `WASMUX engines` lists. Prints the median and minimum wall time of each.
The guests are the conformance guests (see docs/conformance.md).
"""
import shlex
import statistics
import subprocess
import sys
import time


def engines(wasmux):
    out = subprocess.run(wasmux + ["engines"], check=True, capture_output=True, text=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def main():
    wasmux, probe, hello = shlex.split(sys.argv[1]), sys.argv[2], sys.argv[3]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    workloads = {
        "primes 20M": [probe, "primes", "20000000"],
        "primes 0": [probe, "primes", "0"],
        "hello": [hello],
    }
    commands = {
        (engine, name): wasmux + ["run", "--engine", engine] + args
        for engine in engines(wasmux)
        for name, args in workloads.items()
    }
    times = {key: [] for key in commands}
    for _ in range(runs):
        for key, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            times[key].append(time.perf_counter() - started)
    for (engine, name), samples in times.items():
        print(f"{engine:10} {name:12} median {statistics.median(samples) * 1000:8.1f} ms"
              f"  (min {min(samples) * 1000:.1f}, n={len(samples)})")


if __name__ == "__main__":
    main()
