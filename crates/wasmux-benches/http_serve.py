#!/usr/bin/env python3
"""A served wasi:http component under load, side by side in one run: requests/s and
p50/p99 latency of the http-hello component (crates/wasmux-conformance/guests) under wrk,
served by `wasmux run`, by `wasmtime serve` of wasmtime 48 (both also with its WASI 0.3
counterpart, http-hello-p3), by wasmux-oci in a podman
container, by containerd-shim-wasmux-v1 and runwasi's containerd-shim-wasmtime-v1 through
`ctr run`, against a native Rust (hyper) server in a runc container. Then the first
response after `podman run -d` (precompile cache warm and cold), and the memory of idle
service containers (PSS of each container's process and of its monitor: conmon or the
shim).

    python3 crates/wasmux-benches/http_serve.py
    WASMTIME=~/.cache/wasmtime-48/bin/wasmtime RUNWASI=.../containerd-shim-wasmtime-v1 \
        CONNECTIONS=16 SECONDS=10 IDLE=50 ROUNDS=5 python3 crates/wasmux-benches/http_serve.py

`ROUNDS` repeats the load runs, every server once per round, in turn (the figures are
each server's medians, and its requests/s range shows the noise); `PARTS` picks among
`throughput,first,idle` (all by default).

`WASMTIME` names a wasmtime 48 CLI built with `serve` (docs/performance.md says how);
`RUNWASI` a build of runwasi's wasmtime shim; rows without them are left out. The load
generator shares the machine's cores with the server. Everything is private (podman
storage and config, runtimes' roots, a containerd with its own root, state and sockets,
stopped by PID); containers use the host's network namespace on 127.0.0.1 ports (no
firewall rules are made). Needs root, podman, buildah, conmon, runc, containerd, wrk (the
apt packages .ci/run installs)."""

import json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from container_start import (REPO, TARGET, cleanup, private_podman, runtime_wrappers, sh,  # noqa: E402
                             start_containerd)

CONNECTIONS = int(os.environ.get("CONNECTIONS", "16"))
SECONDS = int(os.environ.get("SECONDS", "10"))
IDLE = int(os.environ.get("IDLE", "50"))
COLD_RUNS = int(os.environ.get("COLD_RUNS", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "1"))
PARTS = set(os.environ.get("PARTS", "throughput,first,idle").split(","))


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


def proxy_library(work, name, pin=("", "")):
    """Builds the conformance guest `name` as a library exporting only its handler,
    with the manifest text `pin[0]` replaced by `pin[1]`."""
    guest = work / name
    shutil.copytree(REPO / "crates/wasmux-conformance/guests" / name, guest)
    main = guest / "src/main.rs"
    (guest / "src/lib.rs").write_text(main.read_text().replace("\nfn main() {}\n", "\n"))
    main.unlink()
    manifest = guest / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace(*pin)
                        + '\n[lib]\ncrate-type = ["cdylib"]\n\n[workspace]\n')
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip2",
                    "--target-dir", str(TARGET / "bench-guests")], check=True, cwd=guest,
                   env={k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"})


def build(work):
    env = {**os.environ, "CARGO_TARGET_DIR": str(TARGET)}
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "wasmux-cli", "-p", "wasmux-oci",
                    "-p", "containerd-shim-wasmux"],
                   check=True, cwd=REPO, env=env)
    # The conformance guest as the usual shape of a wasi:http/proxy component, which
    # every server here runs alike: a library exporting only the handler (runwasi
    # serves a component only if it exports no wasi:cli/run before it), its bindings
    # pinned to WASI 0.2.4 (the `wasi` crate's newest import 0.2.12, which runwasi's
    # wasmtime 36 does not link); and its WASI 0.3 counterpart, the same way.
    proxy_library(work, "http-hello", ('wasi = "0.14"', 'wasi = "=0.14.2"'))
    proxy_library(work, "http-hello-p3")
    native_dir = REPO / "crates/wasmux-benches/http-native"
    # Static, so that it runs in a `from scratch` image as the Wasm one does.
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "x86_64-unknown-linux-gnu",
                    "--target-dir", str(TARGET / "bench-native")], check=True, cwd=native_dir,
                   env={**{k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"},
                        "RUSTFLAGS": "-C target-feature=+crt-static"})
    component = TARGET / "bench-guests/wasm32-wasip2/release/http_hello.wasm"
    component_p3 = TARGET / "bench-guests/wasm32-wasip2/release/http_hello_p3.wasm"
    native = TARGET / "bench-native/x86_64-unknown-linux-gnu/release/http-native"
    wrapper, runc = runtime_wrappers(work, TARGET / "release/wasmux-oci")
    return TARGET / "release/wasmux", (component, component_p3), native, wrapper, runc


def images(work, storage, component, native):
    for name, host, guest in [("wasm-http", component, "/http-hello.wasm"), ("native-http", native, "/http-native")]:
        ctr = sh("buildah", *storage, "from", "scratch")
        sh("buildah", *storage, "copy", ctr, str(host), guest)
        sh("buildah", *storage, "config", "--entrypoint", json.dumps([guest]), ctr)
        sh("buildah", *storage, "commit", "--format", "oci", "--rm", ctr, name)
        sh("buildah", *storage, "push", name, f"oci-archive:{work}/{name}.tar:docker.io/library/{name}:latest")


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


class PodmanService:
    """`image` on podman's `runtime`, detached, in the host's network on 127.0.0.1:PORT."""

    def __init__(self, podman, runtime, image):
        self.podman, self.runtime, self.image = podman, runtime, image

    def start(self, port):
        listen = f"127.0.0.1:{port}"
        return self.podman("run", "-d", "--network", "host", "--runtime", self.runtime,
                           "--annotation", f"wasmux.io/http-listen={listen}", "--env", f"HTTP_LISTEN={listen}",
                           self.image)

    def stop(self, container):
        self.podman("rm", "--force", "--time", "1", container)

    def pids(self, container):
        """The container's process and its monitor (conmon)."""
        state = json.loads(self.podman("inspect", container))[0]["State"]
        return state["Pid"], state["ConmonPid"]


class CtrService:
    """The wasm-http image on a containerd shim (`runtime`), `ctr run -d --net-host`, told
    its address by the guest variable `variable`."""

    def __init__(self, ctr, runtime, variable):
        self.ctr, self.runtime, self.variable = ctr, runtime, variable
        self.ids = iter(range(10**6))

    def start(self, port):
        task = f"svc{next(self.ids)}"
        sh(*self.ctr, "run", "-d", "--net-host", "--runtime", self.runtime, "--env",
           f"{self.variable}=127.0.0.1:{port}", "docker.io/library/wasm-http:latest", task)
        return task

    def stop(self, task):
        subprocess.run([*self.ctr, "task", "kill", "-s", "SIGKILL", task], capture_output=True)
        for _ in range(100):
            if subprocess.run([*self.ctr, "task", "delete", task], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        sh(*self.ctr, "container", "delete", task)

    def pids(self, task):
        """The container's process and its monitor (the shim, its parent)."""
        line = next(l for l in sh(*self.ctr, "task", "ls").splitlines()[1:] if l.split()[0] == task)
        pid = int(line.split()[1])
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        return pid, parent


def throughput(wasmux, components, wasmtime, services):
    """name -> [(requests/s, p50, p99) of each round]: in every round each server is
    started, warmed, measured and stopped in turn."""
    rows = {}

    def measure(name, start, stop):
        port = free_port()
        handle = start(port)
        try:
            print(f"measuring {name}", file=sys.stderr)
            wait_answering(port)
            sh("wrk", "-t1", "-c1", "-d1s", f"http://127.0.0.1:{port}/")  # warm-up
            rows.setdefault(name, []).append(wrk(port))
        finally:
            stop(handle)

    def process(args):
        return lambda port: subprocess.Popen([str(a).replace("PORT", str(port)) for a in args],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def end(child):
        child.terminate()
        child.wait()

    component, component_p3 = components
    for _ in range(ROUNDS):
        measure("wasmux run (CLI)", process([wasmux, "run", "--listen", "127.0.0.1:PORT", component]), end)
        if wasmtime:
            # `-S cli`: the component imports wasi:cli (its environment, stdio), which
            # `wasmtime serve` links only when asked.
            measure("wasmtime serve (48)", process([wasmtime, "serve", "-S", "cli", "--addr",
                                                    "127.0.0.1:PORT", component]), end)
        # WASI 0.3: wasmux's switch; `wasmtime serve` 48 links WASI 0.3 by default (and
        # reuses an instance for up to 128 requests, 16 at once: wasmux takes one each).
        measure("wasmux run (CLI), WASI 0.3", process(
            [wasmux, "run", "--engine-option", "wasm-component-model-async=on",
             "--listen", "127.0.0.1:PORT", component_p3]), end)
        if wasmtime:
            measure("wasmtime serve (48), WASI 0.3", process(
                [wasmtime, "serve", "-S", "cli", "--addr", "127.0.0.1:PORT", component_p3]), end)
        for name, service in services.items():
            measure(name, service.start, service.stop)
    return rows


def first_response(podman, work):
    """Median seconds from `podman run -d` to the first 200: Wasm warm and cold cache,
    native."""
    ways = {"Wasm, cache warm": PodmanService(podman, "wasmux-oci", "wasm-http"),
            "Wasm, cache cold": PodmanService(podman, "wasmux-oci", "wasm-http"),
            "native (runc)": PodmanService(podman, "runc-private", "native-http")}
    times = {name: [] for name in ways}
    for _ in range(COLD_RUNS):
        for name, service in ways.items():
            if name.endswith("cold"):
                subprocess.run(["rm", "-rf", f"{work}/cache"], check=True)
            port = free_port()
            start = time.perf_counter()
            container = service.start(port)
            wait_answering(port)
            times[name].append((time.perf_counter() - start) * 1000)
            service.stop(container)
    return {name: statistics.median(t) for name, t in times.items()}


def idle_memory(services):
    """Mean PSS per idle service container (MiB): its process, its monitor (conmon or
    the shim)."""
    result = {}
    for name, service in services.items():
        running = []
        for _ in range(IDLE):
            port = free_port()
            running.append(service.start(port))
            wait_answering(port)
        time.sleep(1)
        process, monitor = [], []
        for handle in running:
            pid, parent = service.pids(handle)
            process.append(pss_kib(pid))
            monitor.append(pss_kib(parent))
        for handle in running:
            service.stop(handle)
        result[name] = (statistics.mean(process) / 1024, statistics.mean(monitor) / 1024)
    return result


def shims(work, runwasi):
    """A private containerd whose PATH has wasmux's shim (and runwasi's wasmtime shim
    when `runwasi` names it), with the wasm-http image: the ctr services, and the
    daemon to stop."""
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "containerd-shim-wasmux-v1").symlink_to(TARGET / "release/containerd-shim-wasmux-v1")
    if runwasi:
        (bin_dir / "containerd-shim-wasmtime-v1").symlink_to(Path(runwasi).resolve())
    os.environ["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    os.environ["WASMUX_CACHE_DIR"] = f"{work}/shim-cache"  # containerd's env, so the shim's
    daemon = start_containerd(work)
    ctr = ["ctr", "-a", f"{work}/grpc.sock", "-n", "bench"]
    sh(*ctr, "image", "import", f"{work}/wasm-http.tar")
    services = {"ctr, containerd-shim-wasmux-v1": CtrService(ctr, "io.containerd.wasmux.v1", "WASMUX_HTTP_LISTEN")}
    if runwasi:
        services["ctr, runwasi's containerd-shim-wasmtime-v1"] = CtrService(
            ctr, "io.containerd.wasmtime.v1", "WASMTIME_HTTP_PROXY_SOCKET_ADDR")
    return services, daemon


def print_throughput(rows, wasmtime):
    """The load table: each server's medians over the rounds, with ratios to wasmtime's
    own server where measured, else to wasmux's CLI."""
    medians = {name: tuple(statistics.median(r[i] for r in runs) for i in range(3))
               for name, runs in rows.items()}
    base = medians.get("wasmtime serve (48)", medians["wasmux run (CLI)"])
    print(f"\nhttp-hello under wrk -t2 -c{CONNECTIONS} -d{SECONDS}s, median of {ROUNDS} "
          "interleaved round(s), same machine:\n")
    print("| server | requests/s | req/s range | p50 | p99 | req/s ratio | p99 ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (rps, p50, p99) in medians.items():
        low, high = min(r[0] for r in rows[name]), max(r[0] for r in rows[name])
        print(f"| {name} | {rps:,.0f} | {low:,.0f}–{high:,.0f} | {p50:.2f} ms | {p99:.2f} ms "
              f"| {rps / base[0]:.2f} | {p99 / base[2]:.2f} |")
    if not wasmtime:
        print("| wasmtime serve (48) | not measured: set WASMTIME | | | | | |")


def main():
    if os.geteuid() != 0:
        sys.exit("needs root (podman and runc as root)")
    wasmtime = os.environ.get("WASMTIME")
    work = Path(tempfile.mkdtemp(prefix="wasmux-http-bench-"))
    daemon = None
    try:
        wasmux, components, native, wrapper, runc = build(work)
        podman = Podman(work, wrapper, runc)
        images(work, podman.storage, components[0], native)
        services = {"podman, Wasm via wasmux-oci": PodmanService(podman, "wasmux-oci", "wasm-http"),
                    "podman, native hyper via runc": PodmanService(podman, "runc-private", "native-http")}
        ctr_services, daemon = shims(work, os.environ.get("RUNWASI"))
        services.update(ctr_services)
        if "throughput" in PARTS:
            print_throughput(throughput(wasmux, components, wasmtime, services), wasmtime)
        if "first" in PARTS:
            firsts = first_response(podman, work)
            print(f"\nFirst 200 after `podman run -d` (median of {COLD_RUNS}, host network):\n")
            print("| image | first response |")
            print("|---|---:|")
            for name, ms in firsts.items():
                print(f"| {name} | {ms:.0f} ms |")
        if "idle" not in PARTS:
            return
        memory = idle_memory(services)
        print(f"\nIdle service containers: {IDLE} at once, mean PSS per container:\n")
        print("| way | container process | monitor (conmon or shim) | total |")
        print("|---|---:|---:|---:|")
        for name, (process, monitor) in memory.items():
            print(f"| {name} | {process:.1f} MiB | {monitor:.1f} MiB | {process + monitor:.1f} MiB |")
    finally:
        subprocess.run(["podman", "--root", f"{work}/storage", "--runroot", f"{work}/runroot",
                        "rm", "--all", "--force"], capture_output=True)
        cleanup(work, daemon)


if __name__ == "__main__":
    main()
