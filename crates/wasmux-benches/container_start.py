#!/usr/bin/env python3
"""Container start through real managers: a Wasm hello image through wasmux-oci against a
static native hello image through runc, with the same podman (and the same containerd),
interleaved run by run, medians and ratios from one run. The precompile cache is warm
(one untimed run first). Then where wasmux-oci's own time goes: each lifecycle command
timed on its own, beside runc's on the native bundle.

    python3 crates/wasmux-benches/container_start.py             # release build, every default engine
    RUNS=50 FEATURES=wasmtime python3 crates/wasmux-benches/container_start.py

Everything is private: podman storage and config, runc and wasmux-oci roots, a containerd
with its own root, state and sockets (stopped by PID). Needs root, podman, buildah,
conmon, runc, containerd (the apt packages .ci/run installs)."""

import json, os, shutil, signal, statistics, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/wasmux/target"))
RUNS = int(os.environ.get("RUNS", "30"))


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout.strip()


def timed(args, **kw):
    start = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, **kw)
    elapsed = time.perf_counter() - start
    if out.returncode != 0 or "Hello" not in out.stdout:
        sys.exit(f"{args}: exit {out.returncode}: {out.stdout} {out.stderr}")
    return elapsed


def build(work):
    features = os.environ.get("FEATURES")
    cmd = ["cargo", "build", "--quiet", "--release", "-p", "wasmux-oci"]
    if features:
        cmd += ["--no-default-features", "--features", features]
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "CARGO_TARGET_DIR": str(TARGET)})
    binary = TARGET / "release/wasmux-oci"
    return (binary, *runtime_wrappers(work, binary))


def runtime_wrappers(work, binary):
    """Scripts that run wasmux-oci (`binary`, its cache and state under `work`) and runc
    (its state under `work`): the runtimes a private podman is given."""
    wrapper = work / "wasmux-oci"
    wrapper.write_text(f'#!/bin/sh\nWASMUX_CACHE_DIR={work}/cache exec {binary} --root {work}/wasmux-state "$@"\n')
    runc = work / "runc-private"
    runc.write_text(f'#!/bin/sh\nexec runc --root {work}/runc-state "$@"\n')
    for script in (wrapper, runc):
        script.chmod(0o755)
    return wrapper, runc


def images(work, storage):
    native = work / "hello-native"
    sh("gcc", "-O2", "-static", "-o", str(native), str(REPO / "crates/wasmux-benches/hello.c"))
    module = next((REPO / "examples/hello/rootfs").glob("*.wasm"))
    for name, host, guest, annotation in [
        ("wasm-hello", module, "/hello.wasm", "compat"),
        ("native-hello", native, "/hello", "compat-smart"),
    ]:
        ctr = sh("buildah", *storage, "from", "scratch")
        sh("buildah", *storage, "copy", ctr, str(host), guest)
        sh("buildah", *storage, "config", "--entrypoint", json.dumps([guest]),
           "--annotation", f"module.wasm.image/variant={annotation}", ctr)
        sh("buildah", *storage, "commit", "--format", "oci", "--rm", ctr, name)
        sh("buildah", *storage, "push", name, f"oci-archive:{work}/{name}.tar:docker.io/library/{name}:latest")


def private_podman(work, wrapper, runc, netns=None):
    """podman's storage flags and environment for a podman of this run only: storage,
    config and temporary files under `work`, the runtimes `wasmux-oci` (`wrapper`) and
    `runc-private` (`runc`), and containers in the `netns` network mode if given."""
    storage = ["--root", f"{work}/storage", "--runroot", f"{work}/runroot", "--storage-driver", "overlay"]
    conf = work / "containers.conf"
    network = f'netns = "{netns}"\n' if netns else ""
    conf.write_text(f"""[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
{network}[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{work}/libpod-tmp"
[engine.runtimes]
wasmux-oci = ["{wrapper}"]
runc-private = ["{runc}"]
""")
    return storage, {**os.environ, "CONTAINERS_CONF": str(conf)}


def interleave(commands):
    """commands: name -> callable returning seconds. One warm-up each, then RUNS rounds."""
    for run in commands.values():
        run()
    times = {name: [] for name in commands}
    for _ in range(RUNS):
        for name, run in commands.items():
            times[name].append(run())
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def start_containerd(work, log=None):
    """A private containerd under `work`; with `log`, at debug level into that file (its
    "event published" lines time a container's phases)."""
    config = work / "containerd.toml"
    config.write_text(f"""version = 2
root = "{work}/containerd-root"
state = "{work}/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{work}/grpc.sock"
[ttrpc]
  address = "{work}/ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{work}/opt"
""")
    args = ["containerd", "--config", str(config)]
    if log is not None:
        args += ["--log-level", "debug"]
    daemon = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                              stderr=open(log, "w") if log is not None else subprocess.DEVNULL)
    for _ in range(600):
        if subprocess.run(["ctr", "-a", f"{work}/grpc.sock", "version"], capture_output=True).returncode == 0:
            return daemon
        time.sleep(0.1)
    sys.exit("containerd did not answer")


def lifecycle(binary, work):
    """Each command of one container's life, wasmux-oci against runc, medians in ms."""
    bundles = {}
    for name, spec_args in [("wasm", ["/hello.wasm"]), ("native", ["/hello"])]:
        bundle = work / f"bundle-{name}"
        (bundle / "rootfs").mkdir(parents=True)
        src = next((REPO / "examples/hello/rootfs").glob("*.wasm")) if name == "wasm" else work / "hello-native"
        shutil.copy(src, bundle / "rootfs" / spec_args[0].lstrip("/"))
        sh("runc", "spec", "--bundle", str(bundle))
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["args"] = spec_args
        config["process"]["terminal"] = False
        (bundle / "config.json").write_text(json.dumps(config))
        bundles[name] = bundle
    env = {**os.environ, "WASMUX_CACHE_DIR": f"{work}/cache"}
    runtimes = {"wasmux-oci": ([str(binary), "--root", f"{work}/lc-wasmux"], bundles["wasm"]),
                "runc": (["runc", "--root", f"{work}/lc-runc"], bundles["native"])}
    steps = ["create", "start", "state", "delete"]
    times = {(rt, s): [] for rt in runtimes for s in steps}
    for i in range(RUNS + 1):
        for rt, (cmd, bundle) in runtimes.items():
            cid = f"lc-{i}"
            for step, args in [("create", ["create", "--bundle", str(bundle), cid]),
                               ("start", ["start", cid]), ("state", ["state", cid]),
                               ("delete", ["delete", "--force", cid])]:
                t0 = time.perf_counter()
                # No pipes: the container process keeps its stdio, which would hold a
                # captured create open until the container exits.
                subprocess.run(cmd + args, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env)
                if i:
                    times[(rt, step)].append((time.perf_counter() - t0) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}, steps


def main():
    if os.geteuid() != 0:
        sys.exit("needs root (podman, runc and containerd as root)")
    work = Path(tempfile.mkdtemp(prefix="wasmux-bench-"))
    daemon = None
    try:
        binary, wrapper, runc = build(work)
        storage, penv = private_podman(work, wrapper, runc, netns="none")
        images(work, storage)
        podman = ["podman", *storage, "run", "--rm", "--runtime"]
        daemon = start_containerd(work)
        ctr = ["ctr", "-a", f"{work}/grpc.sock", "-n", "bench"]
        for name in ("wasm-hello", "native-hello"):
            sh(*ctr, "image", "import", f"{work}/{name}.tar")
        counter = iter(range(10**6))
        ctr_run = lambda binary_args, image: timed(
            [*ctr, "run", "--rm", *binary_args, f"docker.io/library/{image}:latest", f"b{next(counter)}"])
        results = interleave({
            "podman run, Wasm via wasmux-oci": lambda: timed(podman + ["wasmux-oci", "wasm-hello"], env=penv),
            "podman run, native via runc": lambda: timed(podman + ["runc-private", "native-hello"], env=penv),
            "ctr run, Wasm via wasmux-oci": lambda: ctr_run(["--runc-binary", str(TARGET / "release/wasmux-oci"),
                                                              "--runc-root", f"{work}/ctr-wasmux"], "wasm-hello"),
            "ctr run, native via runc": lambda: ctr_run(["--runc-root", f"{work}/ctr-runc"], "native-hello"),
        })
        names = list(results)
        print(f"\n{RUNS} interleaved runs each, warm precompile cache, median wall time:\n")
        print("| manager | Wasm via wasmux-oci | native via runc | ratio |")
        print("|---|---:|---:|---:|")
        for manager, (w, n) in [("podman run --rm", names[0:2]), ("ctr run --rm", names[2:4])]:
            print(f"| {manager} | {results[w]:.0f} ms | {results[n]:.0f} ms | {results[w] / results[n]:.2f} |")
        steps_times, steps = lifecycle(binary, work)
        print("\nEach runtime command on its own (median ms; wasmux-oci on the Wasm hello, runc on the native one):\n")
        print("| command | " + " | ".join(steps) + " |")
        print("|---|" + "---:|" * len(steps))
        for rt in ("wasmux-oci", "runc"):
            print(f"| {rt} | " + " | ".join(f"{steps_times[(rt, s)]:.1f}" for s in steps) + " |")
    finally:
        subprocess.run(["podman", "--root", f"{work}/storage", "--runroot", f"{work}/runroot",
                        "rm", "--all", "--force"], capture_output=True)
        cleanup(work, daemon)


def cleanup(work, daemon):
    """Stops containerd by its PID, undoes the mounts under `work`, removes it and the
    namespace's parent cgroup (the containers' own are removed by their runtimes)."""
    if daemon:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait()
    mounts = [l.split()[1] for l in Path("/proc/mounts").read_text().splitlines() if l.split()[1].startswith(str(work))]
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        try:
            (hierarchy / "bench").rmdir()
        except OSError:
            pass


if __name__ == "__main__":
    main()
