//! The real containerd, started by this test with a private root, state and sockets,
//! running Wasm images through its runc shim with `--runc-binary wasmux-oci`, stopped
//! by its PID at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::e2e::{self, Buildah, Cases, expect};

const NAMESPACE: &str = "wasmux-test";

/// The test's containerd, and the wasmux-oci wrapper its runc shim is pointed at.
struct Containerd {
    daemon: e2e::Containerd,
    dir: PathBuf,
    wrapper: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Self {
        Containerd {
            daemon: e2e::Containerd::start(dir, NAMESPACE, e2e::ContainerdSetup::default()),
            dir: dir.to_owned(),
            wrapper: e2e::wrapper(dir, false),
        }
    }

    fn ctr_command(&self, args: &[&str]) -> Command {
        self.daemon.ctr_command(args)
    }

    fn ctr(&self, args: &[&str]) -> Output {
        self.daemon.ctr(args)
    }

    fn runc_root(&self) -> PathBuf {
        self.dir.join("runc")
    }

    /// The pid of task `id` once it is running (a liveness bound, not a timing).
    fn running_pid(&self, id: &str) -> Result<i32, String> {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let tasks = self.ctr(&["task", "ls"]);
            let text = String::from_utf8_lossy(&tasks.stdout);
            let running = text.lines().find_map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                match fields[..] {
                    [task, pid, "RUNNING"] if task == id => pid.parse().ok(),
                    _ => None,
                }
            });
            if let Some(pid) = running {
                return Ok(pid);
            }
            if Instant::now() > until {
                return Err(format!("{id} never running: {text}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr run --rm --runc-binary wasmux-oci [FLAGS] IMAGE ID [ARGS]`; ctr's ARGS
    /// replace the image's whole command line, so they start with the module.
    fn run_command(&self, flags: &[&str], image: &str, id: &str, args: &[&str]) -> Command {
        self.ctr_run("--rm", flags, image, id, args)
    }

    /// `ctr run MODE --runc-binary wasmux-oci ...`, MODE `--rm` or `-d`.
    fn ctr_run(&self, mode: &str, flags: &[&str], image: &str, id: &str, args: &[&str]) -> Command {
        let image = format!("docker.io/library/{image}:latest");
        let mut all = vec!["run", mode, "--runc-binary"];
        let wrapper = self.wrapper.display().to_string();
        let root = self.runc_root().display().to_string();
        all.push(&wrapper);
        all.extend(["--runc-root", &root]);
        all.extend_from_slice(flags);
        all.push(&image);
        all.push(id);
        all.extend_from_slice(args);
        self.ctr_command(&all)
    }

    fn run(&self, flags: &[&str], image: &str, id: &str, args: &[&str]) -> Output {
        self.run_command(flags, image, id, args).output().unwrap()
    }
}

/// What `ctr run` gives a container by default: uid 0, containerd's default capability
/// set (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP,
/// SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE), no-new-privileges.
const CTR_DEFAULTS: e2e::Confined = e2e::Confined {
    user: "0",
    capabilities: "00000000a80425fb",
    user_namespace: false,
};

#[test]
fn containerd_runs_wasm_images_through_wasmux_oci() {
    if !e2e::tools_available(
        "containerd",
        &["containerd", "ctr", "buildah", "runc", "gcc"],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let buildah = Buildah::new(tmp.path().join("storage"), tmp.path().join("runroot"));
    let containerd = Containerd::start(tmp.path());
    containerd
        .daemon
        .import(&buildah, &e2e::standard_images(tmp.path()));

    let hello = "Hello from a Wasm container, run by wasmux!";
    let mut cases = Cases::default();
    cases.case("hello", || {
        expect(
            &containerd.run(&[], "wasm-hello", "hello", &[]),
            0,
            Some(hello),
        )
    });
    cases.case("exit 7", || {
        expect(
            &containerd.run(&[], "wasm-probe", "exit7", &["/probe.wasm", "exit", "7"]),
            7,
            None,
        )
    });
    cases.case("trap is 134", || {
        expect(
            &containerd.run(
                &[],
                "wasm-probe",
                "trap",
                &["/probe.wasm", "trap", "unreachable"],
            ),
            134,
            None,
        )
    });
    cases.case("--memory-limit 32 MiB, 128 MiB wanted: 137", || {
        let flags = ["--memory-limit", "33554432"];
        expect(
            &containerd.run(
                &flags,
                "wasm-probe",
                "oom",
                &["/probe.wasm", "alloc", "128"],
            ),
            137,
            None,
        )
    });
    cases.case("--env reaches the guest", || {
        expect(
            &containerd.run(
                &["--env", "K=V"],
                "wasm-probe",
                "env",
                &["/probe.wasm", "env"],
            ),
            0,
            Some("K=\"V\""),
        )
    });
    for engine in crate::harness::engines() {
        cases.case(&format!("--annotation run.oci.handler={engine}"), || {
            let annotation = format!("run.oci.handler={engine}");
            let id = format!("engine-{engine}");
            expect(
                &containerd.run(&["--annotation", &annotation], "wasm-hello", &id, &[]),
                0,
                Some(hello),
            )
        });
    }
    cases.case(
        "confinement: ctr's defaults, --seccomp: its capabilities, no-new-privileges, seccomp, namespaces, root",
        || {
            let mut child = containerd
                .run_command(&["--seccomp"], "wasm-probe", "confined", &["/probe.wasm", "spin"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let probed = containerd
                .running_pid("confined")
                .and_then(|pid| e2e::confinement_case(pid, &CTR_DEFAULTS));
            let _ = containerd.ctr(&["task", "kill", "--signal", "SIGKILL", "confined"]);
            let _ = child.wait();
            probed
        },
    );
    cases.case(
        "wasi:sockets: the container's network, not the host's",
        || e2e::ctr_network_case(|flags, id, guest| containerd.run(flags, "wasm-net", id, guest)),
    );
    cases.case(
        "containerd restarted while a container runs: still running, killed, 143 reaches ctr",
        || {
            e2e::ctr_restart_case(&containerd.daemon, |id| {
                let args = ["/probe.wasm", "spin"];
                containerd
                    .ctr_run("-d", &[], "wasm-probe", id, &args)
                    .output()
                    .unwrap()
            })
        },
    );
    cases.case("wasi:http served, drained on kill: 143", || {
        e2e::ctr_http_case(
            |args| containerd.ctr(args),
            |flags, id, guest| containerd.run_command(flags, "wasm-http", id, guest),
        )
    });
    cases.case("ctr task kill: 143", || {
        let mut child = containerd
            .run_command(&[], "wasm-probe", "spinner", &["/probe.wasm", "spin"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Err(e) = containerd.running_pid("spinner") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        let killed = expect(&containerd.ctr(&["task", "kill", "spinner"]), 0, None);
        if killed.is_err() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        killed?;
        expect(&out, 143, None)
    });
    cases.case("10 concurrent containers, each its own output", || {
        let outputs: Vec<(String, Output)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..10)
                .map(|i| {
                    let containerd = &containerd;
                    s.spawn(move || {
                        let id = format!("many-{i}");
                        let out =
                            containerd.run(&[], "wasm-probe", &id, &["/probe.wasm", "args", &id]);
                        (id, out)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (id, out) in outputs {
            expect(&out, 0, Some(&format!("2:\"{id}\"")))?;
        }
        Ok(())
    });
    cases.case("native image runs through the runc delegate", || {
        expect(
            &containerd.run(&[], "native-hello", "native", &[]),
            0,
            Some(hello),
        )
    });
    cases.case("missing entrypoint: wasmux's message, non-zero", || {
        e2e::expect_error(
            &containerd.run(&[], "wasm-missing", "missing", &[]),
            "entrypoint /missing.wasm not found",
        )
    });
    cases.case("invalid module: wasmux's message, non-zero", || {
        e2e::expect_error(
            &containerd.run(&[], "wasm-invalid", "invalid", &[]),
            "invalid module",
        )
    });
    cases.case("nothing left under the runtime root", || {
        let root = containerd.runc_root().join(NAMESPACE);
        e2e::holds_nothing(&root)
    });
    cases.finish("containerd");
}
