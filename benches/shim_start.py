#!/usr/bin/env python3
"""Container start through containerd, three ways, interleaved run by run in one run:
(a) the Wasm hello image on containerd-shim-wasmux-v1 (`--runtime io.containerd.wasmux.v1`),
(b) the same image on containerd's runc shim calling wasmux-oci (`--runc-binary`),
(c) a static native hello image on runc. Medians per sequential `ctr run --rm`, then
containers per second for 10 started at once. The precompile cache of (b) is warm; the
shim compiles in each container (its content-store compiler is not built yet).

    python3 benches/shim_start.py                  # release builds of the shim and wasmux-oci
    RUNS=50 python3 benches/shim_start.py

Private containerd (root, state, sockets; stopped by PID), private buildah storage.
Needs root, buildah, containerd, runc, gcc."""

import os, subprocess, sys, tempfile, time
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
        daemon = start_containerd(work)
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
        native = medians["(c) native, runc"]
        print(f"\n{RUNS} interleaved `ctr run --rm` each (median), then {CONCURRENT} at once:\n")
        print("| way | median | ratio to runc native | containers/s, 10 at once |")
        print("|---|---:|---:|---:|")
        for name in ways:
            print(f"| {name} | {medians[name]:.0f} ms | {medians[name] / native:.2f} | {rates[name]:.1f} |")
    finally:
        cleanup(work, daemon)


if __name__ == "__main__":
    main()
