//! The real podman (and conmon) running Wasm images through wasmux-oci, with private
//! storage and configuration: the machine's own container state is never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::e2e::{self, Buildah, Cases, expect};

struct Podman {
    dir: PathBuf,
    buildah: Buildah,
    conf: PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Self {
        let wrapper = e2e::wrapper(dir, true);
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            format!(
                r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{tmp}"
[engine.runtimes]
wasmux-oci = ["{wrapper}"]
"#,
                tmp = dir.join("libpod-tmp").display(),
                wrapper = wrapper.display()
            ),
        )
        .unwrap();
        Podman {
            dir: dir.to_owned(),
            buildah: Buildah::new(dir.join("storage"), dir.join("runroot")),
            conf,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", &self.conf)
            .env("WASMUX_HOST_SECRET", "must-not-reach-the-guest")
            .args(self.buildah.storage_args())
            .args(args);
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `podman run --rm --runtime wasmux-oci ARGS...`.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "--rm", "--runtime", "wasmux-oci"];
        all.extend_from_slice(args);
        self.output(&all)
    }

    fn state_is_empty(&self) -> Result<(), String> {
        e2e::holds_nothing(&e2e::wrapper_state(&self.dir))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.output(&["rm", "--all", "--force"]);
        let _ = Command::new("buildah")
            .args(self.buildah.storage_args())
            .args(["rm", "--all"])
            .output();
        e2e::unmount_under(&self.dir);
        // podman's cgroupfs parents (conmon's and the containers'), where now empty.
        e2e::remove_cgroup_parent("libpod_parent/conmon");
        e2e::remove_cgroup_parent("libpod_parent");
    }
}

#[test]
fn podman_runs_wasm_images_through_wasmux_oci() {
    if !e2e::tools_available("podman", &["podman", "buildah", "conmon", "runc", "gcc"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let podman = Podman::new(tmp.path());
    for image in e2e::standard_images(tmp.path()) {
        podman.buildah.build(&image);
    }
    let hello = "Hello from a Wasm container, run by wasmux!";
    let mut cases = Cases::default();
    cases.case("hello", || {
        expect(&podman.run(&["wasm-hello"]), 0, Some(hello))
    });
    cases.case("exit 7", || {
        expect(&podman.run(&["wasm-probe", "exit", "7"]), 7, None)
    });
    cases.case("exit 255", || {
        expect(&podman.run(&["wasm-probe", "exit", "255"]), 255, None)
    });
    cases.case("trap is 134", || {
        expect(
            &podman.run(&["wasm-probe", "trap", "unreachable"]),
            134,
            None,
        )
    });
    cases.case("--memory 32m, 128 MiB wanted: 137", || {
        expect(
            &podman.run(&["--memory", "32m", "wasm-probe", "alloc", "128"]),
            137,
            None,
        )
    });
    cases.case("env: -e reaches the guest, the host's does not", || {
        let out = podman.run(&["-e", "K=V", "wasm-probe", "env"]);
        expect(&out, 0, Some("K=\"V\""))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("WASMUX_HOST_SECRET") {
            return Err(format!("host variable reached the guest: {text}"));
        }
        expect(&out, 0, Some("container=\"podman\""))
    });
    cases.case("-v DIR:/data:ro cannot be written", || {
        e2e::volume_case(tmp.path(), |args| podman.run(args))
    });
    cases.case("-i: stdin reaches the guest", || {
        e2e::stdin_case(podman.command(&[
            "run",
            "--rm",
            "-i",
            "--runtime",
            "wasmux-oci",
            "wasm-probe",
            "echo",
        ]))
    });
    cases.case("-t: the guest has a terminal", || {
        expect(
            &podman.run(&["-t", "wasm-probe", "tty"]),
            0,
            Some("stdout=true"),
        )
    });
    cases.case("run -d, podman stop -t 2: 143, logs kept", || {
        let started = podman.output(&[
            "run",
            "-d",
            "--name",
            "spinner",
            "--runtime",
            "wasmux-oci",
            "wasm-probe",
            "spin",
        ]);
        expect(&started, 0, None)?;
        expect(&podman.output(&["stop", "-t", "2", "spinner"]), 0, None)?;
        let code = podman.output(&["inspect", "--format", "{{.State.ExitCode}}", "spinner"]);
        expect(&code, 0, Some("143"))?;
        expect(&podman.output(&["rm", "spinner"]), 0, None)
    });
    cases.case(
        "--cpus 0.5 --pids-limit 20 reach the container's cgroup",
        || {
            let started = podman.output(&[
                "run",
                "-d",
                "--name",
                "capped",
                "--cpus",
                "0.5",
                "--pids-limit",
                "20",
                "--runtime",
                "wasmux-oci",
                "wasm-probe",
                "spin",
            ]);
            expect(&started, 0, None)?;
            let pid = podman.output(&["inspect", "--format", "{{.State.Pid}}", "capped"]);
            let pid: i32 = String::from_utf8_lossy(&pid.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            let limits = crate::harness::cgroup_limits(pid);
            expect(&podman.output(&["rm", "--force", "capped"]), 0, None)?;
            if limits != (Some("50000".into()), Some("20".into())) {
                return Err(format!("cgroup limits of pid {pid}: {limits:?}"));
            }
            Ok(())
        },
    );
    cases.case(
        "confinement: --user, --cap-drop all, no-new-privileges, seccomp, namespaces, root",
        || {
            let started = podman.output(&[
                "run",
                "-d",
                "--name",
                "confined",
                "--user",
                "1000:1000",
                "--cap-drop",
                "all",
                "--security-opt",
                "no-new-privileges",
                "--runtime",
                "wasmux-oci",
                "wasm-probe",
                "spin",
            ]);
            expect(&started, 0, None)?;
            let pid = podman.output(&["inspect", "--format", "{{.State.Pid}}", "confined"]);
            let pid: i32 = String::from_utf8_lossy(&pid.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            let probed = e2e::confinement_case(pid, &e2e::Confined::UNPRIVILEGED);
            expect(&podman.output(&["rm", "--force", "confined"]), 0, None)?;
            probed
        },
    );
    cases.case(
        "wasi:sockets: the container's network, not the host's",
        || {
            e2e::network_case(
                |flags, args| {
                    let mut all = flags.to_vec();
                    all.push("wasm-net");
                    all.extend_from_slice(args);
                    podman.run(&all)
                },
                &["--network", "host"],
            )
        },
    );
    // `podman run -d --name NAME FLAGS... --runtime wasmux-oci wasm-http`.
    let serve = |name: &str, flags: &[&str]| {
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(flags);
        all.extend_from_slice(&["--runtime", "wasmux-oci", "wasm-http"]);
        expect(&podman.output(&all), 0, None)
    };
    let stop = |name: &str| e2e::stop_and_exit_code(|args| podman.output(args), name);
    cases.case("wasi:http served, drained on stop: 143", || {
        e2e::http_case(
            |address| {
                let annotation = format!("wasmux.io/http-listen={address}");
                serve(
                    "service",
                    &["--network", "host", "--annotation", &annotation],
                )
            },
            || stop("service"),
        )
    });
    cases.case(
        "wasi:http published with -p: the container's own network, port forwarded",
        || {
            e2e::http_case(
                |address| {
                    // slirp4netns: the container gets a network namespace of its own
                    // and the port is forwarded from 127.0.0.1 by a user-mode process,
                    // without a bridge or firewall rules on the machine.
                    let publish = format!("{address}:8080");
                    serve(
                        "published",
                        &[
                            "--network",
                            "slirp4netns:port_handler=slirp4netns",
                            "-p",
                            &publish,
                        ],
                    )
                },
                || stop("published"),
            )
        },
    );
    cases.case(
        "--annotation wasmux.io/timeout=1: a request past it is answered 504",
        || {
            e2e::http_exchange_case(
                "/spin",
                |answer| {
                    answer
                        .starts_with("HTTP/1.1 504")
                        .then_some(())
                        .ok_or(format!("a request that never ends: {answer:?}"))
                },
                |address| {
                    let listen = format!("wasmux.io/http-listen={address}");
                    serve(
                        "deadline",
                        &[
                            "--network",
                            "host",
                            "--annotation",
                            &listen,
                            "--annotation",
                            "wasmux.io/timeout=1",
                        ],
                    )
                },
                || stop("deadline"),
            )
        },
    );
    cases.case("podman logs shows the output", || {
        let started = podman.output(&[
            "run",
            "-d",
            "--name",
            "talker",
            "--runtime",
            "wasmux-oci",
            "wasm-probe",
            "args",
            "logged",
        ]);
        expect(&started, 0, None)?;
        expect(&podman.output(&["wait", "talker"]), 0, Some("0"))?;
        expect(&podman.output(&["logs", "talker"]), 0, Some("2:\"logged\""))?;
        expect(&podman.output(&["rm", "talker"]), 0, None)
    });
    for engine in crate::harness::engines() {
        cases.case(&format!("--annotation run.oci.handler={engine}"), || {
            let annotation = format!("run.oci.handler={engine}");
            expect(
                &podman.run(&["--annotation", &annotation, "wasm-hello"]),
                0,
                Some(hello),
            )
        });
    }
    cases.case("an unknown engine annotation is refused by name", || {
        e2e::expect_error(
            &podman.run(&["--annotation", "run.oci.handler=nope", "wasm-hello"]),
            "unknown engine \"nope\"",
        )
    });
    cases.case(
        "native image (compat-smart) runs through the runc delegate",
        || expect(&podman.run(&["native-hello"]), 0, Some(hello)),
    );
    cases.case("missing entrypoint: wasmux's message, non-zero", || {
        e2e::expect_error(
            &podman.run(&["wasm-missing"]),
            "entrypoint /missing.wasm not found",
        )
    });
    cases.case("invalid module: wasmux's message, non-zero", || {
        e2e::expect_error(&podman.run(&["wasm-invalid"]), "invalid module")
    });
    cases.case("after --rm nothing is left under the runtime root", || {
        podman.state_is_empty()
    });
    cases.finish("podman");
}
