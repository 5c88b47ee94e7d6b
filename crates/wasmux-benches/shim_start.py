#!/usr/bin/env python3
"""Container start through containerd, three ways, interleaved run by run in one run:
(a) the Wasm hello image on containerd-shim-wasmux-v1 (`--runtime io.containerd.wasmux.v1`),
(b) the same image on containerd's runc shim calling wasmux-oci (`--runc-binary`),
(c) a static native hello image on runc. Medians per sequential `ctr run --rm`, then
containers per second for 10 started at once. Both Wasm ways load from a warm precompile
cache: (b) wasmux-oci's, (a) the shim's node cache (WASMUX_CACHE_DIR in containerd's
environment, reached by the container through the directory fd the shim opened).

    python3 crates/wasmux-benches/shim_start.py                  # release builds of the shim and wasmux-oci
    RUNS=50 python3 crates/wasmux-benches/shim_start.py

Private containerd (root, state, sockets; stopped by PID), private buildah storage.
Needs root, buildah, containerd, runc, gcc."""

import os, re, statistics, subprocess, sys, tempfile, time
from datetime import datetime
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from container_start import (REPO, RUNS, TARGET, cleanup, images, interleave, sh,  # noqa: E402
                             start_containerd, timed)

CONCURRENT = 10


def build(work):
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "containerd-shim-wasmux", "-p", "wasmux-oci"],
                   check=True, cwd=REPO, env={**os.environ, "CARGO_TARGET_DIR": str(TARGET)})
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "containerd-shim-wasmux-v1").symlink_to(TARGET / "release/containerd-shim-wasmux-v1")
    wrapper = work / "wasmux-oci"
    wrapper.write_text(f'#!/bin/sh\nWASMUX_CACHE_DIR={work}/cache exec {TARGET}/release/wasmux-oci "$@"\n')
    wrapper.chmod(0o755)
    return bin_dir, wrapper


def main():
    if os.geteuid() != 0:
        sys.exit("needs root (containerd and runc as root)")
    work = Path(tempfile.mkdtemp(prefix="wasmux-shim-bench-"))
    daemon = None
    try:
        bin_dir, wrapper = build(work)
        storage = ["--root", f"{work}/storage", "--runroot", f"{work}/runroot", "--storage-driver", "overlay"]
        images(work, storage)
        os.environ["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
        os.environ["WASMUX_CACHE_DIR"] = f"{work}/shim-cache"  # containerd's env, so the shim's
        log = work / "containerd.log"
        daemon = start_containerd(work, log)
        ctr = ["ctr", "-a", f"{work}/grpc.sock", "-n", "bench"]
        for name in ("wasm-hello", "native-hello"):
            sh(*ctr, "image", "import", f"{work}/{name}.tar")
        counter = iter(range(10**6))
        ways = {
            "(a) Wasm, containerd-shim-wasmux-v1": (["--runtime", "io.containerd.wasmux.v1"], "wasm-hello"),
            "(b) Wasm, runc shim + wasmux-oci": (["--runc-binary", str(wrapper), "--runc-root", f"{work}/ctr-wasmux"],
                                                 "wasm-hello"),
            "(c) native, runc": (["--runc-root", f"{work}/ctr-runc"], "native-hello"),
        }
        run = lambda flags, image: timed([*ctr, "run", "--rm", *flags, f"docker.io/library/{image}:latest",
                                          f"b{next(counter)}"])
        medians = interleave({name: (lambda f=f, i=i: run(f, i)) for name, (f, i) in ways.items()})
        rates = {}
        for name, (flags, image) in ways.items():
            start = time.perf_counter()
            with ThreadPoolExecutor(CONCURRENT) as pool:
                list(pool.map(lambda _: run(flags, image), range(CONCURRENT)))
            rates[name] = CONCURRENT / (time.perf_counter() - start)
        phase_medians = {name: phases(lambda f=f, i=i: run(f, i), log) for name, (f, i) in ways.items()}
        native = medians["(c) native, runc"]
        print(f"\n{RUNS} interleaved `ctr run --rm` each (median), then {CONCURRENT} at once:\n")
        print("| way | median | ratio to runc native | containers/s, 10 at once |")
        print("|---|---:|---:|---:|")
        for name in ways:
            print(f"| {name} | {medians[name]:.0f} ms | {medians[name] / native:.2f} | {rates[name]:.1f} |")
        print(f"\nWhere the time goes: containerd's events (debug log) between the `ctr` process's "
              f"start and end, medians of the sequential runs whose task events all arrived (of {RUNS} per way), ms:\n")
        print("| way | runs | " + " | ".join(PHASES) + " | total |")
        print("|---|---:|" + "---:|" * (len(PHASES) + 1))
        for name, (spans, counted) in phase_medians.items():
            print(f"| {name} | {counted} | " + " | ".join(f"{v:.1f}" for v in spans) + f" | {sum(spans):.0f} |")
    finally:
        cleanup(work, daemon)


# The spans between a `ctr run --rm`'s start, containerd's events and its end.
EVENTS = ["/containers/create", "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]
PHASES = ["ctr start, image, snapshot", "shim start + container created", "task start",
          "process runs, exit reported", "ctr sees exit, task deleted", "container removed, ctr exits"]
# Task events come from the shim and are stamped when containerd receives them.


def event_times(text):
    """(topic, epoch seconds) of each event line of a containerd log: "published" by
    containerd, "forwarded" when a shim's (task) event arrives."""
    found = []
    for line in text.splitlines():
        if 'msg="event published"' not in line and 'msg="event forwarded"' not in line:
            continue
        stamp = re.match(r'time="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z"', line)
        topic = re.search(r" topic=(\S+)", line)
        if not stamp or not topic:
            continue
        # RFC 3339 with nanoseconds: whole seconds through datetime, the rest by hand.
        fraction = (stamp.group(2) or "")[:9].ljust(9, "0")
        when = datetime.fromisoformat(stamp.group(1) + "+00:00").timestamp() + int(fraction) / 1e9
        found.append((topic.group(1), when))
    return found


def phases(run_once, log):
    """Medians of each phase over RUNS sequential runs (those whose events all arrived)."""
    samples = []
    for _ in range(RUNS):
        offset = log.stat().st_size
        start = time.time()
        run_once()
        end = time.time()
        time.sleep(0.5)  # the shim's last events reach the log (they are forwarded asynchronously)
        with open(log) as f:
            f.seek(offset)
            events = {}
            for topic, when in event_times(f.read()):
                if when >= start:
                    events.setdefault(topic, when)
        if any(topic not in events for topic in EVENTS):
            continue  # a shim event lost or late: the run is left out of the phases
        marks = [start, *(events[topic] for topic in EVENTS), end]
        samples.append([(b - a) * 1000 for a, b in zip(marks, marks[1:])])
    if len(samples) < RUNS // 2:
        sys.exit(f"containerd logged every event for only {len(samples)} of {RUNS} runs")
    return [statistics.median(column) for column in zip(*samples)], len(samples)


if __name__ == "__main__":
    main()
