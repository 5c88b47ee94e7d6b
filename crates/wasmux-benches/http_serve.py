#!/usr/bin/env python3
"""A served wasi:http component under load, side by side in one run: requests/s and
p50/p99 latency of the http-hello component (crates/wasmux-conformance/guests) under wrk,
served by `wasmux run`, by `wasmtime serve` of wasmtime 48, by wasmux-oci in a podman
container, against a native Rust (hyper) server in a runc container. Then the first
response after `podman run -d` (precompile cache warm and cold), and the memory of idle
service containers (PSS of each container's processes: conmon and the container process).

    python3 crates/wasmux-benches/http_serve.py
    WASMTIME=~/.cache/wasmtime-48/bin/wasmtime CONNECTIONS=16 SECONDS=10 IDLE=50 python3 ...

`WASMTIME` names a wasmtime 48 CLI built with `serve` (cargo install wasmtime-cli
--version =48.0.8 --features serve,...); without it that row says "not measured". The
load generator shares the machine's cores with the server, as the issue's figures did.
Everything is private (podman storage, config and runtimes' roots); containers use the
host's network namespace on 127.0.0.1 ports (no firewall rules are made). Needs root,
podman, buildah, conmon, runc, wrk (the apt packages .ci/run installs, and wrk)."""

import json, os, re, socket, statistics, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from container_start import REPO, TARGET, cleanup, private_podman, runtime_wrappers, sh  # noqa: E402

CONNECTIONS = int(os.environ.get("CONNECTIONS", "16"))
SECONDS = int(os.environ.get("SECONDS", "10"))
IDLE = int(os.environ.get("IDLE", "50"))
COLD_RUNS = int(os.environ.get("COLD_RUNS", "10"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path="/"):
    """One GET; the status (0 when nothing answers)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64).decode(errors="replace")
            return int(head.split()[1]) if head.startswith("HTTP/") else 0
    except OSError:
        return 0


def wait_answering(port, timeout=30.0):
    """Seconds until `port` answers 200."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if get(port) == 200:
            return time.perf_counter() - start
        time.sleep(0.002)
    sys.exit(f"nothing answered on port {port} within {timeout} s")


def build(work):
    env = {**os.environ, "CARGO_TARGET_DIR": str(TARGET)}
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "wasmux-cli", "-p", "wasmux-oci"],
                   check=True, cwd=REPO, env=env)
    guests = REPO / "crates/wasmux-conformance/guests"
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip2", "-p", "http-hello",
                    "--target-dir", str(TARGET / "bench-guests")], check=True, cwd=guests,
                   env={k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"})
    native_dir = REPO / "crates/wasmux-benches/http-native"
    # Static, so that it runs in a `from scratch` image as the Wasm one does.
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "x86_64-unknown-linux-gnu",
                    "--target-dir", str(TARGET / "bench-native")], check=True, cwd=native_dir,
                   env={**{k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"},
                        "RUSTFLAGS": "-C target-feature=+crt-static"})
    component = TARGET / "bench-guests/wasm32-wasip2/release/http-hello.wasm"
    native = TARGET / "bench-native/x86_64-unknown-linux-gnu/release/http-native"
    wrapper, runc = runtime_wrappers(work, TARGET / "release/wasmux-oci")
    return TARGET / "release/wasmux", component, native, wrapper, runc


def images(work, storage, component, native):
    for name, host, guest in [("wasm-http", component, "/http-hello.wasm"), ("native-http", native, "/http-native")]:
        ctr = sh("buildah", *storage, "from", "scratch")
        sh("buildah", *storage, "copy", ctr, str(host), guest)
        sh("buildah", *storage, "config", "--entrypoint", json.dumps([guest]), ctr)
        sh("buildah", *storage, "commit", "--format", "oci", "--rm", ctr, name)


def wrk(port):
    """wrk's requests/s, p50 and p99 (ms) against `port`."""
    out = sh("wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", f"http://127.0.0.1:{port}/")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    if errors:
        sys.exit(f"wrk saw errors against port {port}:\n{out}")

    def percentile(p):
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rps, percentile(50), percentile(99)


def pss_kib(pid):
    """Proportional set size of a process, KiB (shared pages split among their users)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


class Podman:
    def __init__(self, work, wrapper, runc):
        self.storage, self.env = private_podman(work, wrapper, runc)

    def __call__(self, *args):
        return sh("podman", *self.storage, *args, env=self.env)

    def serve(self, runtime, image, port):
        """A detached service container in the host's network on 127.0.0.1:`port`."""
        listen = f"127.0.0.1:{port}"
        return self("run", "-d", "--network", "host", "--runtime", runtime,
                    "--annotation", f"wasmux.io/http-listen={listen}", "--env", f"HTTP_LISTEN={listen}", image)

    def pids(self, container):
        state = json.loads(self("inspect", container))[0]["State"]
        return [state["Pid"], state["ConmonPid"]]


def throughput(wasmux, component, wasmtime, podman):
    """name -> (requests/s, p50, p99), each server started, warmed and stopped in turn."""
    rows = {}

    def measure(name, start, stop):
        port = free_port()
        handle = start(port)
        try:
            print(f"measuring {name}", file=sys.stderr)
            wait_answering(port)
            sh("wrk", "-t1", "-c1", "-d1s", f"http://127.0.0.1:{port}/")  # warm-up
            rows[name] = wrk(port)
        finally:
            stop(handle)

    def process(args):
        return lambda port: subprocess.Popen([str(a).replace("PORT", str(port)) for a in args],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def end(child):
        child.terminate()
        child.wait()

    measure("wasmux run (CLI)", process([wasmux, "run", "--listen", "127.0.0.1:PORT", component]), end)
    if wasmtime:
        # `-S cli`: the component imports wasi:cli (its environment, stdio), which
        # `wasmtime serve` links only when asked.
        measure("wasmtime serve (48)", process([wasmtime, "serve", "-S", "cli", "--addr", "127.0.0.1:PORT",
                                                component]), end)
    for name, runtime, image in [("podman, Wasm via wasmux-oci", "wasmux-oci", "wasm-http"),
                                 ("podman, native hyper via runc", "runc-private", "native-http")]:
        measure(name, lambda port, r=runtime, i=image: podman.serve(r, i, port),
                lambda container: podman("rm", "--force", "--time", "15", container))
    return rows


def first_response(podman, work):
    """Median seconds from `podman run -d` to the first 200: Wasm warm and cold cache,
    native."""
    times = {"Wasm, cache warm": [], "Wasm, cache cold": [], "native (runc)": []}
    for _ in range(COLD_RUNS):
        for name, runtime, image in [("Wasm, cache warm", "wasmux-oci", "wasm-http"),
                                     ("Wasm, cache cold", "wasmux-oci", "wasm-http"),
                                     ("native (runc)", "runc-private", "native-http")]:
            if name.endswith("cold"):
                subprocess.run(["rm", "-rf", f"{work}/cache"], check=True)
            port = free_port()
            start = time.perf_counter()
            container = podman.serve(runtime, image, port)
            wait_answering(port)
            times[name].append((time.perf_counter() - start) * 1000)
            podman("rm", "--force", "--time", "15", container)
    return {name: statistics.median(t) for name, t in times.items()}


def idle_memory(podman):
    """Mean PSS per idle service container (MiB): the container process, conmon, both."""
    result = {}
    for name, runtime, image in [("Wasm via wasmux-oci", "wasmux-oci", "wasm-http"),
                                 ("native via runc", "runc-private", "native-http")]:
        containers = []
        for _ in range(IDLE):
            port = free_port()
            containers.append(podman.serve(runtime, image, port))
            wait_answering(port)
        time.sleep(1)
        process, monitor = [], []
        for container in containers:
            pid, conmon = podman.pids(container)
            process.append(pss_kib(pid))
            monitor.append(pss_kib(conmon))
        podman("rm", "--force", "--time", "15", *containers)
        result[name] = (statistics.mean(process) / 1024, statistics.mean(monitor) / 1024)
    return result


def main():
    if os.geteuid() != 0:
        sys.exit("needs root (podman and runc as root)")
    wasmtime = os.environ.get("WASMTIME")
    work = Path(tempfile.mkdtemp(prefix="wasmux-http-bench-"))
    try:
        wasmux, component, native, wrapper, runc = build(work)
        podman = Podman(work, wrapper, runc)
        images(work, podman.storage, component, native)
        rows = throughput(wasmux, component, wasmtime, podman)
        # The reference: wasmtime's own server where measured, else wasmux's CLI.
        base = rows.get("wasmtime serve (48)", rows["wasmux run (CLI)"])
        print(f"\nhttp-hello under wrk -t2 -c{CONNECTIONS} -d{SECONDS}s, one run, same machine:\n")
        print("| server | requests/s | p50 | p99 | req/s ratio | p99 ratio |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, (rps, p50, p99) in rows.items():
            print(f"| {name} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {rps / base[0]:.2f} | {p99 / base[2]:.2f} |")
        if not wasmtime:
            print("| wasmtime serve (48) | not measured: set WASMTIME | | | | |")
        firsts = first_response(podman, work)
        print(f"\nFirst 200 after `podman run -d` (median of {COLD_RUNS}, host network):\n")
        print("| image | first response |")
        print("|---|---:|")
        for name, ms in firsts.items():
            print(f"| {name} | {ms:.0f} ms |")
        memory = idle_memory(podman)
        print(f"\nIdle service containers: {IDLE} at once, mean PSS per container:\n")
        print("| image | container process | conmon | total |")
        print("|---|---:|---:|---:|")
        for name, (process, monitor) in memory.items():
            print(f"| {name} | {process:.1f} MiB | {monitor:.1f} MiB | {process + monitor:.1f} MiB |")
    finally:
        subprocess.run(["podman", "--root", f"{work}/storage", "--runroot", f"{work}/runroot",
                        "rm", "--all", "--force"], capture_output=True)
        cleanup(work, None)


if __name__ == "__main__":
    main()
