//! The real podman (and conmon) running Wasm images through wasmux-oci, with private
//! storage and configuration: the machine's own container state is never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::e2e::{self, Buildah, Cases, expect};

struct Podman {
    dir: PathBuf,
    buildah: Buildah,
    conf: PathBuf,
    /// podman's storage flags (buildah's, as root; a vfs store of its own, rootless).
    storage: Vec<String>,
    rootless: bool,
}

/// The user rootless podman runs as: `nobody`, who has no subordinate ids (podman then
/// maps that one uid), so the machine's `/etc/subuid` is left alone.
const NOBODY: u32 = 65534;

impl Podman {
    fn new(dir: &Path) -> Self {
        let buildah = Buildah::new(dir.join("storage"), dir.join("runroot"));
        let storage = buildah.storage_args();
        Self::with_runtime(dir, e2e::wrapper(dir, true), buildah, storage, false)
    }

    /// podman run by `nobody`, in its own user namespace, with everything it uses
    /// under `dir` and owned by that user: vfs storage, `$HOME`, `$XDG_RUNTIME_DIR`,
    /// and a copy of wasmux-oci (the build's own is under root's home). Images are built
    /// by root's buildah and loaded from archives.
    fn rootless(dir: &Path) -> Self {
        let bin = dir.join("bin");
        for sub in [&bin, &dir.join("home"), &dir.join("xdg"), &dir.join("data")] {
            std::fs::create_dir_all(sub).unwrap();
        }
        std::fs::copy(env!("CARGO_BIN_EXE_wasmux-oci"), bin.join("wasmux-oci")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("xdg"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let wrapper = e2e::wrapper_of(&bin.join("wasmux-oci"), dir, true);
        let store = dir.join("rootless-storage");
        let storage = [
            "--root",
            &store.join("root").display().to_string(),
            "--runroot",
            &store.join("run").display().to_string(),
            "--storage-driver",
            "vfs",
        ]
        .map(String::from)
        .to_vec();
        let buildah = Buildah::new(dir.join("buildah"), dir.join("buildah-run"));
        let podman = Self::with_runtime(dir, wrapper, buildah, storage, true);
        for entry in std::fs::read_dir(dir).unwrap() {
            chown_tree(&entry.unwrap().path());
        }
        chown_tree(dir);
        podman
    }

    fn with_runtime(
        dir: &Path,
        wrapper: PathBuf,
        buildah: Buildah,
        storage: Vec<String>,
        rootless: bool,
    ) -> Self {
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
            buildah,
            conf,
            storage,
            rootless,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = if self.rootless {
            let mut cmd = Command::new("setpriv");
            let id = NOBODY.to_string();
            cmd.args(["--reuid", &id, "--regid", &id, "--clear-groups", "podman"])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", self.dir.join("home"))
                .env("XDG_RUNTIME_DIR", self.dir.join("xdg"));
            cmd
        } else {
            Command::new("podman")
        };
        cmd.env("CONTAINERS_CONF", &self.conf)
            .env("WASMUX_HOST_SECRET", "must-not-reach-the-guest")
            .args(&self.storage)
            .args(args);
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Builds the images; rootless, loads them into the user's own store.
    fn add_images(&self, images: &[e2e::Image<'_>]) {
        for image in images {
            self.buildah.build(image);
            if self.rootless {
                let archive = self.dir.join(format!("{}.tar", image.name));
                self.buildah.push_archive(image.name, &archive);
                chown_tree(&archive);
                let loaded = self.output(&["load", "-i", archive.to_str().unwrap()]);
                assert!(loaded.status.success(), "podman load: {loaded:?}");
            }
        }
    }

    /// `podman run --rm --runtime wasmux-oci ARGS...`.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "--rm", "--runtime", "wasmux-oci"];
        all.extend_from_slice(args);
        self.output(&all)
    }

    /// The container `name`'s process, from `inspect`.
    fn pid(&self, name: &str) -> i32 {
        let pid = self.output(&["inspect", "--format", "{{.State.Pid}}", name]);
        String::from_utf8_lossy(&pid.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// `-e K=V` and podman's own `container=podman` reach the guest; the variable
    /// podman itself was given does not.
    fn env_case(&self) -> Result<(), String> {
        let out = self.run(&["-e", "K=V", "wasm-probe", "env"]);
        expect(&out, 0, Some("K=\"V\""))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("WASMUX_HOST_SECRET") {
            return Err(format!("host variable reached the guest: {text}"));
        }
        expect(&out, 0, Some("container=\"podman\""))
    }

    /// `run -d` of the spinning probe, then `stop -t 2`: exit code 143.
    fn stop_case(&self) -> Result<(), String> {
        let started = self.output(&[
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
        expect(&self.output(&["stop", "-t", "2", "spinner"]), 0, None)?;
        let code = self.output(&["inspect", "--format", "{{.State.ExitCode}}", "spinner"]);
        expect(&code, 0, Some("143"))?;
        expect(&self.output(&["rm", "spinner"]), 0, None)
    }

    /// The confinement probe of `run -d FLAGS --cap-drop all --security-opt
    /// no-new-privileges` of the spinning probe.
    fn confinement_case(&self, flags: &[&str], want: &e2e::Confined) -> Result<(), String> {
        let mut run = vec!["run", "-d", "--name", "confined"];
        run.extend_from_slice(flags);
        run.extend_from_slice(&[
            "--cap-drop",
            "all",
            "--security-opt",
            "no-new-privileges",
            "--runtime",
            "wasmux-oci",
            "wasm-probe",
            "spin",
        ]);
        expect(&self.output(&run), 0, None)?;
        let probed = e2e::confinement_case(self.pid("confined"), want);
        expect(&self.output(&["rm", "--force", "confined"]), 0, None)?;
        probed
    }

    fn state_is_empty(&self) -> Result<(), String> {
        e2e::holds_nothing(&e2e::wrapper_state(&self.dir))
    }
}

/// Gives `path` (and what is under it, if a directory) to [`NOBODY`].
fn chown_tree(path: &Path) {
    std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path());
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.output(&["rm", "--all", "--force"]);
        let _ = Command::new("buildah")
            .args(self.buildah.storage_args())
            .args(["rm", "--all"])
            .output();
        if self.rootless {
            // The process rootless podman keeps its user namespace alive with.
            for file in [
                self.dir.join("libpod-tmp/pause.pid"),
                self.dir.join("xdg/libpod/tmp/pause.pid"),
            ] {
                if let Some(pid) = std::fs::read_to_string(file)
                    .ok()
                    .and_then(|p| p.trim().parse().ok())
                {
                    let _ = rustix::process::kill_process(
                        rustix::process::Pid::from_raw(pid).unwrap(),
                        rustix::process::Signal::KILL,
                    );
                }
            }
        }
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
    podman.add_images(&e2e::standard_images(tmp.path()));
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
        podman.env_case()
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
    cases.case("run -d, podman stop -t 2: 143", || podman.stop_case());
    cases.case(
        "the podman that started it gone: a new one lists it running, kills it, waits for 143",
        || {
            let run = ["run", "-d", "--name", "lasting", "--runtime", "wasmux-oci"];
            expect(
                &podman.output(&[&run[..], &["wasm-probe", "spin"]].concat()),
                0,
                None,
            )?;
            // `run -d` has exited; each command below is a podman process of its own.
            let outcome = (|| {
                let state = ["inspect", "--format", "{{.State.Status}}", "lasting"];
                expect(&podman.output(&state), 0, Some("running"))?;
                expect(
                    &podman.output(&["kill", "--signal", "TERM", "lasting"]),
                    0,
                    None,
                )?;
                expect(&podman.output(&["wait", "lasting"]), 0, Some("143"))
            })();
            let _ = podman.output(&["rm", "--force", "lasting"]);
            outcome
        },
    );
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
            let pid = podman.pid("capped");
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
        || podman.confinement_case(&["--user", "1000:1000"], &e2e::Confined::UNPRIVILEGED),
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
    let serve_image = |name: &str, flags: &[&str], image: &str| {
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(flags);
        all.extend_from_slice(&["--runtime", "wasmux-oci", image]);
        expect(&podman.output(&all), 0, None)
    };
    let serve = |name: &str, flags: &[&str]| serve_image(name, flags, "wasm-http");
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
        "WASI 0.3 served under --annotation wasmux.io/engine-options=wasm-component-model-async=on",
        || {
            e2e::http_case(
                |address| {
                    let listen = format!("wasmux.io/http-listen={address}");
                    let options = "wasmux.io/engine-options=wasm-component-model-async=on";
                    let flags = ["--network", "host", "--annotation", &listen];
                    let flags = [&flags[..], &["--annotation", options]].concat();
                    serve_image("service-p3", &flags, "wasm-http-p3")
                },
                || stop("service-p3"),
            )
        },
    );
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
    cases.case(
        "--annotation wasmux.io/engine-options: the engine in the container is built with them",
        || {
            let options = "wasmux.io/engine-options=tier=baseline";
            expect(
                &podman.run(&["--annotation", options, "wasm-hello"]),
                0,
                Some(hello),
            )?;
            // create compiled Winch's code into the node cache, and the init (which
            // builds its engine with the same options) loaded that entry.
            e2e::cache_holds_code_of(&tmp.path().join("cache"), "winch-")?;
            e2e::expect_error(
                &podman.run(&[
                    "--annotation",
                    "wasmux.io/engine-options=pooling=2",
                    "--annotation",
                    "run.oci.handler=wasmer",
                    "wasm-hello",
                ]),
                "wasmer does not support the pooling option",
            )
        },
    );
    cases.case(
        "--annotation wasmux.io/cpu-time=0.3: a spinning guest ends with 152",
        || {
            let budget = ["--annotation", "wasmux.io/cpu-time=0.3"];
            expect(
                &podman.run(&[&budget[..], &["wasm-probe", "spin"]].concat()),
                152,
                None,
            )
        },
    );
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

#[test]
fn rootless_podman_runs_wasm_images_through_wasmux_oci() {
    let tools = ["podman", "buildah", "conmon", "setpriv", "gcc"];
    if !e2e::tools_available("rootless podman", &tools) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let podman = Podman::rootless(tmp.path());
    let images: Vec<_> = e2e::standard_images(tmp.path())
        .into_iter()
        .filter(|i| ["wasm-hello", "wasm-probe"].contains(&i.name))
        .collect();
    podman.add_images(&images);
    let mut cases = Cases::default();
    cases.case("hello", || {
        let hello = "Hello from a Wasm container, run by wasmux!";
        expect(&podman.run(&["wasm-hello"]), 0, Some(hello))
    });
    cases.case("exit 7", || {
        expect(&podman.run(&["wasm-probe", "exit", "7"]), 7, None)
    });
    cases.case("env: -e reaches the guest, the host's does not", || {
        podman.env_case()
    });
    cases.case("-v DIR:/data:ro cannot be written", || {
        e2e::volume_case(tmp.path(), |args| podman.run(args))
    });
    cases.case(
        "confinement: podman's user namespace, --cap-drop all, no-new-privileges, seccomp",
        || podman.confinement_case(&[], &e2e::Confined::ROOTLESS),
    );
    cases.case("run -d, podman stop -t 2: 143", || podman.stop_case());
    cases.case("after --rm nothing is left under the runtime root", || {
        podman.state_is_empty()
    });
    cases.finish("rootless podman");
}
