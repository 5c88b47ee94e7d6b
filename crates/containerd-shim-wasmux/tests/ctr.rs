//! The real containerd, started by this test with a private root, state and sockets and
//! this build's shim on its PATH, running Wasm images built with buildah through
//! `ctr run --runtime io.containerd.wasmux.v1` (and `io.containerd.wasmux-ENGINE.v1`).

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use wasmux_conformance::e2e::{self, Buildah, Cases, Containerd, ContainerdSetup, expect};

const NAMESPACE: &str = "wasmux-shim-test";
const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wasmux-v1");

/// `ctr run --rm --runtime RUNTIME [FLAGS] IMAGE ID [ARGS]`; ARGS replace the image's
/// command line, so they start with the module.
fn run_command(
    ctr: &Containerd,
    runtime: &str,
    flags: &[&str],
    image: &str,
    id: &str,
    args: &[&str],
) -> Command {
    let image = format!("docker.io/library/{image}:latest");
    let mut all = vec!["run", "--rm", "--runtime", runtime];
    all.extend_from_slice(flags);
    all.push(&image);
    all.push(id);
    all.extend_from_slice(args);
    ctr.ctr_command(&all)
}

/// The shim under its own name, and as `containerd-shim-wasmux-ENGINE-v1` for every
/// engine compiled in.
fn shim_dir(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(SHIM, bin.join("containerd-shim-wasmux-v1")).unwrap();
    for entry in wasmux::ENGINES {
        let name = format!("containerd-shim-wasmux-{}-v1", entry.name);
        std::os::unix::fs::symlink(SHIM, bin.join(name)).unwrap();
    }
    bin
}

#[test]
fn containerd_runs_wasm_images_through_the_wasmux_shim() {
    if !e2e::tools_available("shim", &["containerd", "ctr", "buildah", "gcc"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let buildah = Buildah::new(tmp.path().join("storage"), tmp.path().join("runroot"));
    let bin = shim_dir(tmp.path());
    let cache = tmp.path().join("modules");
    let setup = ContainerdSetup {
        path_prefix: Some(&bin),
        env: vec![("WASMUX_CACHE_DIR", cache.clone().into())],
        cri: None,
    };
    let containerd = Containerd::start(tmp.path(), NAMESPACE, setup);
    containerd.import(&buildah, &e2e::standard_images(tmp.path()));
    let wasmux = "io.containerd.wasmux.v1";
    let probe = |flags: &[&str], id: &str, args: &[&str]| {
        let mut all = vec!["/probe.wasm"];
        all.extend_from_slice(args);
        run_command(&containerd, wasmux, flags, "wasm-probe", id, &all)
            .output()
            .unwrap()
    };

    let mut cases = Cases::default();
    cases.case("hello", || {
        let out = run_command(&containerd, wasmux, &[], "wasm-hello", "hello", &[])
            .output()
            .unwrap();
        expect(&out, 0, Some("Hello from a Wasm container, run by wasmux!"))
    });
    cases.case(
        "the second start maps the node cache's entry, compiled once",
        || {
            let entries = || -> Vec<(std::path::PathBuf, u64)> {
                let mut all: Vec<_> = std::fs::read_dir(&cache)
                    .map(|dir| {
                        dir.filter_map(Result::ok)
                            .map(|e| (e.path(), e.metadata().unwrap().ino()))
                            .collect()
                    })
                    .unwrap_or_default();
                all.sort();
                all
            };
            let first = entries();
            if first.len() != 1 {
                return Err(format!("after one start, cache entries: {first:?}"));
            }
            let out = run_command(&containerd, wasmux, &[], "wasm-hello", "hello2", &[])
                .output()
                .unwrap();
            expect(&out, 0, Some("Hello from a Wasm container, run by wasmux!"))?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("no precompiled code") {
                return Err(format!("the compile helper failed the container: {stderr}"));
            }
            let second = entries();
            (second == first).then_some(()).ok_or(format!(
                "the entry was rewritten: {first:?} then {second:?}"
            ))
        },
    );
    cases.case(
        "wasi:sockets: the container's network, not the host's",
        || {
            e2e::ctr_network_case(|flags, id, guest| {
                run_command(&containerd, wasmux, flags, "wasm-net", id, guest)
                    .output()
                    .unwrap()
            })
        },
    );
    cases.case(
        "containerd restarted while a container runs: still running, killed, 143 reaches ctr",
        || {
            e2e::ctr_restart_case(&containerd, |id| {
                let image = "docker.io/library/wasm-probe:latest";
                let run = [
                    "run",
                    "-d",
                    "--runtime",
                    wasmux,
                    image,
                    id,
                    "/probe.wasm",
                    "spin",
                ];
                containerd.ctr(&run)
            })
        },
    );
    cases.case("wasi:http served, drained on kill: 143", || {
        e2e::ctr_http_case(
            |args| containerd.ctr(args),
            |flags, id, guest| run_command(&containerd, wasmux, flags, "wasm-http", id, guest),
        )
    });
    cases.case("exit 7", || {
        expect(&probe(&[], "exit7", &["exit", "7"]), 7, None)
    });
    cases.case(
        "ctr run --annotation: the timeout ends a spinning guest with 137",
        || {
            let flags = ["--annotation", "wasmux.io/timeout=1"];
            expect(&probe(&flags, "deadline", &["spin"]), 137, None)
        },
    );
    cases.case(
        "ctr run --annotation: the CPU time budget ends a spinning guest with 152",
        || {
            let flags = ["--annotation", "wasmux.io/cpu-time=0.3"];
            expect(&probe(&flags, "budget", &["spin"]), 152, None)
        },
    );
    cases.case(
        "ctr run --annotation: the engine and its options, refused by the engine by name",
        || {
            let flags = [
                "--annotation",
                "run.oci.handler=wasmer",
                "--annotation",
                "wasmux.io/engine-options=pooling=2",
            ];
            e2e::expect_error(
                &probe(&flags, "pooled", &["exit", "0"]),
                "wasmer does not support the pooling option",
            )
        },
    );
    cases.case("trap is 134", || {
        expect(&probe(&[], "trap", &["trap", "unreachable"]), 134, None)
    });
    cases.case("--memory-limit 32 MiB, 128 MiB wanted: 137", || {
        let out = probe(&["--memory-limit", "33554432"], "oom", &["alloc", "128"]);
        expect(&out, 137, None)
    });
    cases.case("env is exactly the spec's", || {
        let out = probe(&["--env", "K=V"], "env", &["env"]);
        expect(&out, 0, Some("K=\"V\""))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = text.lines().filter_map(|l| l.split('=').next()).collect();
        match names.as_slice() {
            ["K", "PATH"] => Ok(()),
            other => Err(format!(
                "variables beyond the spec's K and ctr's PATH: {other:?}"
            )),
        }
    });
    cases.case("argv verbatim", || {
        let out = probe(&[], "args", &["args", "a b", "--x"]);
        expect(
            &out,
            0,
            Some("0:\"/probe.wasm\"\n1:\"args\"\n2:\"a b\"\n3:\"--x\""),
        )
    });
    cases.case("the container's /proc is out of reach", || {
        let out = probe(
            &[],
            "proc",
            &["try-read", "/proc/self/environ", "/sys/kernel/hostname"],
        );
        expect(
            &out,
            0,
            Some("/proc/self/environ: refused\n/sys/kernel/hostname: refused"),
        )
    });
    cases.case("a ro bind mount refuses every change", || {
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("existing.txt"), "kept").unwrap();
        let mount = format!(
            "type=bind,src={},dst=/data,options=rbind:ro",
            data.display()
        );
        let out = probe(&["--mount", &mount], "ro", &["mutate", "/data"]);
        expect(&out, 0, None)?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("ALLOWED") || text.lines().count() != 6 {
            return Err(format!("ro mount: {text}"));
        }
        let kept = std::fs::read_to_string(data.join("existing.txt")).unwrap();
        (kept == "kept")
            .then_some(())
            .ok_or(format!("the host file changed: {kept:?}"))
    });
    for (signal, code) in [("SIGTERM", 143), ("SIGKILL", 137)] {
        cases.case(&format!("ctr task kill --signal {signal}: {code}"), || {
            let id = format!("spin-{signal}");
            let mut spinning = run_command(
                &containerd,
                wasmux,
                &[],
                "wasm-probe",
                &id,
                &["/probe.wasm", "spin"],
            )
            .spawn()
            .unwrap();
            // The signal until the container ends: a SIGTERM that lands before the
            // guest's handler is installed is ignored by the container's init (pid 1),
            // so it is repeated.
            let mut status = None;
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(200));
                if let Some(done) = spinning.try_wait().unwrap() {
                    status = Some(done);
                    break;
                }
                let _ = containerd.ctr(&["task", "kill", "--signal", signal, &id]);
            }
            let Some(status) = status else {
                let _ = containerd.ctr(&["task", "kill", "--signal", "SIGKILL", &id]);
                let _ = spinning.wait();
                return Err(format!("still running 20 s after the first {signal}"));
            };
            match status.code() {
                Some(got) if got == code => Ok(()),
                other => Err(format!("exit {other:?}, want {code}")),
            }
        });
    }
    for entry in wasmux::ENGINES {
        cases.case(&format!("io.containerd.wasmux-{}.v1", entry.name), || {
            let runtime = format!("io.containerd.wasmux-{}.v1", entry.name);
            let id = format!("engine-{}", entry.name);
            let out = run_command(
                &containerd,
                &runtime,
                &[],
                "wasm-probe",
                &id,
                &["/probe.wasm", "exit", "5"],
            )
            .output()
            .unwrap();
            expect(&out, 5, None)
        });
    }
    cases.case("10 concurrent containers, each its own output", || {
        let children: Vec<_> = (0..10)
            .map(|i| {
                let id = format!("many{i}");
                let word = format!("word{i}");
                let child = run_command(
                    &containerd,
                    wasmux,
                    &[],
                    "wasm-probe",
                    &id,
                    &["/probe.wasm", "args", &word],
                )
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
                (word, child)
            })
            .collect();
        for (word, child) in children {
            let out = child.wait_with_output().unwrap();
            expect(&out, 0, Some(&format!("2:\"{word}\"")))?;
        }
        Ok(())
    });
    cases.finish("containerd_runs_wasm_images_through_the_wasmux_shim");
}
