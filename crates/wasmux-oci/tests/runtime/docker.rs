//! The real Docker (dockerd 20.10, Debian's docker.io, and its managed containerd)
//! running Wasm images through wasmux-oci, configured as a named runtime in its
//! `daemon.json`: `docker run --runtime wasmux IMAGE`. The daemon has its own data root,
//! exec root, socket and config, and a network namespace of its own where Docker makes
//! its bridge, NAT rules and port proxy; the machine's Docker state (if any) and its
//! network are never touched. The cases that reach a container over the network (host
//! network, `-p`) run their client in that namespace.

use std::process::Output;

use crate::e2e::{self, Buildah, Cases, Dockerd, expect};

/// `docker run --rm --runtime wasmux --network none ARGS...`.
fn run(docker: &Dockerd, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm", "--runtime", "wasmux", "--network", "none"];
    all.extend_from_slice(args);
    docker.output(&all)
}

#[test]
fn docker_runs_wasm_images_through_wasmux_oci() {
    let tools = ["dockerd", "docker", "buildah", "containerd", "runc", "gcc"];
    if !e2e::tools_available("docker", &tools) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let wrapper = e2e::wrapper(tmp.path(), false);
    let docker = Dockerd::start(tmp.path(), &[("wasmux", &wrapper)]);
    let buildah = Buildah::new(tmp.path().join("storage"), tmp.path().join("runroot"));
    docker.load(&buildah, &e2e::standard_images(tmp.path()));
    let hello = "Hello from a Wasm container, run by wasmux!";
    let mut cases = Cases::default();
    cases.case("hello (no annotations: Wasm by content)", || {
        expect(&run(&docker, &["wasm-hello"]), 0, Some(hello))
    });
    cases.case("exit 7", || {
        expect(&run(&docker, &["wasm-probe", "exit", "7"]), 7, None)
    });
    cases.case("trap is 134", || {
        expect(
            &run(&docker, &["wasm-probe", "trap", "unreachable"]),
            134,
            None,
        )
    });
    cases.case("--memory 32m, 128 MiB wanted: 137", || {
        expect(
            &run(&docker, &["--memory", "32m", "wasm-probe", "alloc", "128"]),
            137,
            None,
        )
    });
    cases.case("env: -e reaches the guest, the daemon's does not", || {
        let out = run(&docker, &["-e", "K=V", "wasm-probe", "env"]);
        expect(&out, 0, Some("K=\"V\""))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match text
            .lines()
            .find(|l| l.starts_with("DOCKER_") || l.starts_with("HOME="))
        {
            Some(leaked) => Err(format!(
                "a variable of the daemon reached the guest: {leaked}"
            )),
            None => Ok(()),
        }
    });
    cases.case("-v DIR:/data:ro cannot be written", || {
        e2e::volume_case(tmp.path(), |args| run(&docker, args))
    });
    cases.case("-i: stdin reaches the guest", || {
        e2e::stdin_case(docker.command(&[
            "run",
            "--rm",
            "-i",
            "--runtime",
            "wasmux",
            "--network",
            "none",
            "wasm-probe",
            "echo",
        ]))
    });
    cases.case("-t: the guest has a terminal", || {
        expect(
            &run(&docker, &["-t", "wasm-probe", "tty"]),
            0,
            Some("stdout=true"),
        )
    });
    cases.case("run -d, docker stop -t 2: 143, logs kept", || {
        let started = docker.output(&[
            "run",
            "-d",
            "--name",
            "spinner",
            "--runtime",
            "wasmux",
            "--network",
            "none",
            "wasm-probe",
            "spin",
        ]);
        expect(&started, 0, None)?;
        expect(&docker.output(&["stop", "-t", "2", "spinner"]), 0, None)?;
        let code = docker.output(&["inspect", "--format", "{{.State.ExitCode}}", "spinner"]);
        expect(&code, 0, Some("143"))?;
        expect(&docker.output(&["rm", "spinner"]), 0, None)
    });
    cases.case(
        "confinement: --user, --cap-drop all, no-new-privileges, seccomp, namespaces, root",
        || {
            let started = docker.output(&[
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
                "wasmux",
                "--network",
                "none",
                "wasm-probe",
                "spin",
            ]);
            expect(&started, 0, None)?;
            let pid = docker.output(&["inspect", "--format", "{{.State.Pid}}", "confined"]);
            let pid: i32 = String::from_utf8_lossy(&pid.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            let probed = e2e::confinement_case(pid, &e2e::Confined::UNPRIVILEGED);
            expect(&docker.output(&["rm", "--force", "confined"]), 0, None)?;
            probed
        },
    );
    cases.case("wasi:sockets: loopback in the container's network", || {
        expect(
            &run(&docker, &["wasm-net", "loopback"]),
            0,
            Some("loopback: ping over loopback"),
        )
    });
    cases.case(
        "wasi:sockets: the container's network, not the host's",
        || {
            docker.in_network(|| {
                e2e::network_case(
                    |flags, args| {
                        let network = if flags.is_empty() { "none" } else { "host" };
                        let mut all =
                            vec!["run", "--rm", "--runtime", "wasmux", "--network", network];
                        all.push("wasm-net");
                        all.extend_from_slice(args);
                        docker.output(&all)
                    },
                    &["host"],
                )
            })
        },
    );
    cases.case("wasi:http served, drained on stop: 143", || {
        docker.in_network(|| {
            e2e::http_case(
                |address| {
                    let listen = format!("WASMUX_HTTP_LISTEN={address}");
                    let started = docker.output(&[
                        "run",
                        "-d",
                        "--name",
                        "service",
                        "--network",
                        "host",
                        "-e",
                        &listen,
                        "--runtime",
                        "wasmux",
                        "wasm-http",
                    ]);
                    expect(&started, 0, None)
                },
                || e2e::stop_and_exit_code(|args| docker.output(args), "service"),
            )
        })
    });
    cases.case(
        "wasi:http published with -p on Docker's bridge: port proxied, drained on stop",
        || {
            docker.in_network(|| {
                e2e::http_case(
                    |address| {
                        let publish = format!("{address}:8080");
                        let started = docker.output(&[
                            "run",
                            "-d",
                            "--name",
                            "published",
                            "-p",
                            &publish,
                            "--runtime",
                            "wasmux",
                            "wasm-http",
                        ]);
                        expect(&started, 0, None)
                    },
                    || e2e::stop_and_exit_code(|args| docker.output(args), "published"),
                )
            })
        },
    );
    cases.case("docker logs shows the output", || {
        let started = docker.output(&[
            "run",
            "-d",
            "--name",
            "talker",
            "--runtime",
            "wasmux",
            "--network",
            "none",
            "wasm-probe",
            "args",
            "logged",
        ]);
        expect(&started, 0, None)?;
        expect(&docker.output(&["wait", "talker"]), 0, Some("0"))?;
        expect(&docker.output(&["logs", "talker"]), 0, Some("2:\"logged\""))?;
        expect(&docker.output(&["rm", "talker"]), 0, None)
    });
    cases.case("native image runs through the runc delegate", || {
        expect(&run(&docker, &["native-hello"]), 0, Some(hello))
    });
    cases.case("missing entrypoint: wasmux's message, non-zero", || {
        e2e::expect_error(
            &run(&docker, &["wasm-missing"]),
            "entrypoint /missing.wasm not found",
        )
    });
    cases.finish("docker");
}
