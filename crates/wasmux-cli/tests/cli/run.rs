//! The `wasmux` binary end to end: exit codes, stderr, sandboxing and bad input.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::{engines, run_bundle, stderr, stdout, wasmux};
use wasmux_conformance::{BundleBuilder, guests};

fn probe_bundle(args: &[&str]) -> BundleBuilder {
    BundleBuilder::with_module(&guests::core_module("probe"), args)
}

#[test]
fn hello_example_bundle_greets_and_exits_zero_on_every_engine() {
    let bundle = wasmux_conformance::workload::hello_bundle();
    for engine in engines() {
        let out = run_bundle(&bundle, &["--engine", &engine]);
        assert_eq!(out.status.code(), Some(0), "{engine}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "Hello from a Wasm container, run by wasmux!\n",
            "{engine}"
        );
    }
}

#[test]
fn proc_exit_status_is_the_process_exit_code_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    for engine in engines() {
        for code in ["7", "255"] {
            let bundle = probe_bundle(&["exit", code]).write(dir.path());
            let out = run_bundle(&bundle, &["--engine", &engine]);
            assert_eq!(
                out.status.code(),
                Some(code.parse().unwrap()),
                "{engine}: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn trap_exits_134_with_the_trap_on_stderr_only_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = probe_bundle(&["trap", "unreachable"]).write(dir.path());
    for engine in engines() {
        let out = run_bundle(&bundle, &["--engine", &engine]);
        assert_eq!(out.status.code(), Some(134), "{engine}");
        assert!(
            stderr(&out).contains("wasm trap (unreachable)"),
            "{engine}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "{engine}");
    }
}

#[test]
fn timeout_kills_an_infinite_loop_with_137_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = probe_bundle(&["spin"]).write(dir.path());
    for engine in engines() {
        let started = Instant::now();
        let out = run_bundle(&bundle, &["--engine", &engine, "--timeout", "1"]);
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(137), "{engine}: {}", stderr(&out));
        assert!(
            took >= Duration::from_secs(1),
            "{engine} stopped before the deadline: {took:?}"
        );
        // Liveness bound, not a speed claim: the deadline must actually fire. It is
        // generous because the whole process is timed, load included (an AOT compile
        // of the probe takes seconds).
        assert!(took < Duration::from_secs(20), "{engine} took {took:?}");
    }
}

#[test]
fn read_only_mount_refuses_every_change_and_host_stays_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("existing.txt"), b"original").unwrap();
    let bundle = probe_bundle(&["mutate", "/data"])
        .bind(data.path(), "/data", true)
        .write(dir.path());
    let out = run_bundle(&bundle, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "create: refused\nwrite: refused\ntruncate: refused\nrename: refused\ndelete: refused\nmkdir: refused\n"
    );
    let names: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["existing.txt"]);
    assert_eq!(
        std::fs::read(data.path().join("existing.txt")).unwrap(),
        b"original"
    );
}

#[test]
fn read_write_mount_takes_the_guests_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let bundle = probe_bundle(&["write", "/data/out.txt", "written by the guest"])
        .bind(data.path(), "/data", false)
        .write(dir.path());
    let out = run_bundle(&bundle, &[]);
    assert_eq!(out.status.code(), Some(0), "stdout: {}", stdout(&out));
    assert_eq!(
        std::fs::read_to_string(data.path().join("out.txt")).unwrap(),
        "written by the guest"
    );
}

#[test]
fn escapes_from_the_rootfs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A secret next to the rootfs, reachable on the host as ../secret from it.
    std::fs::write(dir.path().join("secret"), b"host secret").unwrap();
    let bundle = probe_bundle(&[
        "try-read",
        "/../../etc/passwd",
        "/../secret",
        "../secret",
        "/abs-link/passwd",
        "/rel-link",
        "/etc/passwd",
    ])
    .write(dir.path());
    let rootfs = dir.path().join("rootfs");
    std::os::unix::fs::symlink("/etc", rootfs.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../secret", rootfs.join("rel-link")).unwrap();
    let out = run_bundle(&bundle, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "/../../etc/passwd: refused\n/../secret: refused\n../secret: refused\n\
         /abs-link/passwd: refused\n/rel-link: refused\n/etc/passwd: refused\n"
    );
}

#[test]
fn guest_sees_only_the_spec_environment_and_argv_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = probe_bundle(&["env"])
        .env(&["A=1", "B=x=y"])
        .write(dir.path());
    let out = run_bundle(&bundle, &[]);
    assert_eq!(stdout(&out), "A=\"1\"\nB=\"x=y\"\n");

    let bundle = probe_bundle(&["args", "a b", "ünï", ""]).write(dir.path());
    let out = run_bundle(&bundle, &[]);
    assert_eq!(
        stdout(&out),
        "0:\"/probe.wasm\"\n1:\"args\"\n2:\"a b\"\n3:\"ünï\"\n4:\"\"\n"
    );
}

#[test]
fn relative_paths_resolve_against_process_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = probe_bundle(&["read", "in.txt"])
        .file("/work/in.txt", "from the working directory\n")
        .file("/in.txt", "from the root\n")
        .cwd("/work")
        .write(dir.path());
    let out = run_bundle(&bundle, &[]);
    assert_eq!(
        stdout(&out),
        "from the working directory\n",
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn bare_module_gets_only_the_given_dirs_env_and_args() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("f.txt"), b"data file").unwrap();
    let probe = guests::core_module("probe");
    let dir_arg = format!("{}::/data:ro", data.path().display());
    let out = wasmux(&[
        "run",
        "--dir",
        &dir_arg,
        "--env",
        "K=V",
        probe.to_str().unwrap(),
        "read",
        "/data/f.txt",
    ]);
    assert_eq!(stdout(&out), "data file");
    let out = wasmux(&[
        "run",
        "--dir",
        &dir_arg,
        probe.to_str().unwrap(),
        "mutate",
        "/data",
    ]);
    assert!(!stdout(&out).contains("ALLOWED"), "{}", stdout(&out));
    let out = wasmux(&["run", "--env", "K=V", probe.to_str().unwrap(), "env"]);
    assert_eq!(stdout(&out), "K=\"V\"\n");
}

#[test]
fn everything_after_the_module_is_the_guests_flags_included() {
    let probe = guests::core_module("probe");
    let probe = probe.to_str().unwrap();
    let out = wasmux(&["run", probe, "args", "--std", "-x", "--engine", "nope"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let argv =
        format!("0:{probe:?}\n1:\"args\"\n2:\"--std\"\n3:\"-x\"\n4:\"--engine\"\n5:\"nope\"\n");
    assert_eq!(stdout(&out), argv);
    let with_separator = wasmux(&["run", probe, "--", "args", "--std"]);
    assert_eq!(
        stdout(&with_separator),
        format!("0:{probe:?}\n1:\"args\"\n2:\"--std\"\n")
    );
}

#[test]
fn a_component_runs_through_wasi_cli_run() {
    let component = guests::component("hello");
    let out = wasmux(&["run", component.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Hello from a Wasm container, run by wasmux!\n"
    );
}

/// `wasi:sockets` only where granted: with `--network` a component reaches a listener
/// of this test on 127.0.0.1; without it the same connect is refused and the guest says
/// so.
#[test]
fn a_component_uses_the_network_only_when_granted() {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let component = guests::component("net");
    let component = component.to_str().unwrap();
    let refused = wasmux(&["run", component, "connect", &addr]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "stderr: {}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("net: connect"),
        "{}",
        stderr(&refused)
    );
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "a connection came through without --network"
    );
    listener.set_nonblocking(false).unwrap();

    let granted = wasmux(&["run", "--network", component, "connect", &addr]);
    assert_eq!(
        granted.status.code(),
        Some(0),
        "stderr: {}",
        stderr(&granted)
    );
    assert_eq!(stdout(&granted), format!("connected to {addr}\n"));
    let (stream, _) = listener.accept().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "hello from the guest\n");

    let loopback = wasmux(&["run", "--network", component, "loopback"]);
    assert_eq!(
        loopback.status.code(),
        Some(0),
        "stderr: {}",
        stderr(&loopback)
    );
    assert_eq!(stdout(&loopback), "loopback: ping over loopback\n");
}

/// A guest blocked in `accept` (a host call, not guest code) still ends with 143 on
/// SIGTERM.
#[test]
fn sigterm_ends_a_guest_blocked_in_accept() {
    use std::io::BufRead;
    let component = guests::component("net");
    let mut child = crate::support::wasmux_command(
        &[],
        &["run", "--network", component.to_str().unwrap(), "listen"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on"), "{line:?}");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
}

#[test]
fn memory_limit_turns_a_large_allocation_into_oom_137() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = probe_bundle(&["alloc", "8"])
        .memory_limit(32 << 20)
        .write(dir.path());
    assert_eq!(run_bundle(&bundle, &[]).status.code(), Some(0));
    let bundle = probe_bundle(&["alloc", "128"])
        .memory_limit(32 << 20)
        .write(dir.path());
    let out = run_bundle(&bundle, &[]);
    assert_eq!(out.status.code(), Some(137), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("out of memory"),
        "stderr: {}",
        stderr(&out)
    );
}

/// Bad input: one line on stderr, the exit code of README, "Exit codes", never a panic.
fn assert_clean_failure(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err}");
    assert!(
        err.starts_with("wasmux: ") && err.contains(needle),
        "stderr: {err}"
    );
    assert!(!err.contains("panicked"), "stderr: {err}");
}

#[test]
fn truncated_module_is_126() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(guests::core_module("hello")).unwrap();
    let bundle = BundleBuilder::default()
        .file("/m.wasm", &bytes[..bytes.len() / 2])
        .args(["/m.wasm"])
        .write(dir.path());
    assert_clean_failure(&run_bundle(&bundle, &[]), 126, "invalid module");
}

#[test]
fn text_entrypoint_is_126() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = BundleBuilder::default()
        .file("/m.wasm", "not wasm at all\n")
        .args(["/m.wasm"])
        .annotation("module.wasm.image/variant", "compat")
        .write(dir.path());
    assert_clean_failure(&run_bundle(&bundle, &[]), 126, "not a WebAssembly module");
}

#[test]
fn broken_config_json_is_125() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = probe_bundle(&["return"]).write(dir.path());
    std::fs::write(bundle.join("config.json"), "{\"ociVersion\": ").unwrap();
    assert_clean_failure(&run_bundle(&bundle, &[]), 125, "invalid OCI bundle config");
}

#[test]
fn missing_mount_source_is_125() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = probe_bundle(&["return"])
        .bind(Path::new("/no/such/source"), "/data", false)
        .write(dir.path());
    assert_clean_failure(&run_bundle(&bundle, &[]), 125, "/no/such/source");
}

#[test]
fn missing_entrypoint_is_127() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = BundleBuilder::default()
        .args(["/absent.wasm"])
        .write(dir.path());
    assert_clean_failure(&run_bundle(&bundle, &[]), 127, "not found");
}

#[test]
fn missing_entry_function_and_unknown_engine_are_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = probe_bundle(&[])
        .args(["/probe.wasm#no_such_export"])
        .write(dir.path());
    assert_clean_failure(&run_bundle(&bundle, &[]), 126, "no_such_export");
    let bundle = probe_bundle(&["return"]).write(dir.path());
    assert_clean_failure(
        &run_bundle(&bundle, &["--engine", "nope"]),
        125,
        "unknown engine",
    );
}

#[test]
fn engines_lists_every_engine_default_first() {
    let out = wasmux(&["engines"]);
    assert_eq!(out.status.code(), Some(0));
    let listing = stdout(&out);
    assert!(listing.starts_with("wasmtime 48.0.8 ("), "{listing}");
    assert!(listing.contains("\nwasmer 7.4.2 ("), "{listing}");
    assert!(
        listing.contains("components: unsupported: wasmer 7 runs core modules only"),
        "{listing}"
    );
}

#[test]
fn a_component_on_a_core_only_engine_is_unsupported_126() {
    let component = guests::component("hello");
    let out = wasmux(&["run", "--engine", "wasmer", component.to_str().unwrap()]);
    assert_clean_failure(&out, 126, "components");
}

/// `--engine-option` reaches the chosen engine: one that has the option runs with it,
/// one that lacks it refuses by name, a malformed option is the command's error.
#[test]
fn engine_options_are_applied_or_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = probe_bundle(&["exit", "3"]).write(dir.path());
    for engine in engines() {
        let out = run_bundle(
            &bundle,
            &["--engine", &engine, "--engine-option", "pooling=4"],
        );
        if engine == "wasmtime" {
            assert_eq!(out.status.code(), Some(3), "{engine}: {}", stderr(&out));
        } else {
            assert_clean_failure(
                &out,
                126,
                &format!("engine {engine} does not support the pooling option"),
            );
        }
    }
    let out = run_bundle(&bundle, &["--engine-option", "stack-size=tiny"]);
    assert_clean_failure(&out, 125, "invalid engine option \"stack-size=tiny\"");
}

/// SIGTERM ends the guest (143), and the run's tmpfs scratch directory, private to this
/// user while it lives, is removed rather than left behind by the default action.
#[test]
fn sigterm_ends_the_guest_with_143_and_removes_its_private_scratch_dirs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let scratch_parent = dir.path().join("tmp");
    std::fs::create_dir(&scratch_parent).unwrap();
    let bundle = probe_bundle(&["spin"])
        .tmpfs("/scratch")
        .write(&dir.path().join("bundle"));
    let mut child = crate::support::wasmux_command(&[], &["run", bundle.to_str().unwrap()])
        .env("TMPDIR", &scratch_parent)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let scratch = loop {
        let made: Vec<_> = std::fs::read_dir(&scratch_parent)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // /scratch and /dev.
        if made.len() == 2 {
            break made;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no scratch dirs"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    for made in &scratch {
        let mode = std::fs::metadata(made).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", made.display());
    }
    // The signal handlers are in before the scratch directories are made.
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert_eq!(
        std::fs::read_dir(&scratch_parent).unwrap().count(),
        0,
        "scratch dirs left behind"
    );
}

/// A CPU time budget (`--cpu-time`, or the bundle's `wasmux.io/cpu-time`) ends a busy
/// guest with SIGXCPU (152) on every engine; a guest that waits longer than the budget
/// without working is not killed.
#[test]
fn a_cpu_time_budget_ends_a_busy_guest_with_152_and_spares_a_waiting_one() {
    let dir = tempfile::tempdir().unwrap();
    let spin = probe_bundle(&["spin"]).write(&dir.path().join("spin"));
    let annotated = probe_bundle(&["spin"])
        .annotation("wasmux.io/cpu-time", "0.3")
        .write(&dir.path().join("annotated"));
    for engine in engines() {
        let flagged = run_bundle(&spin, &["--engine", &engine, "--cpu-time", "0.3"]);
        assert_eq!(
            flagged.status.code(),
            Some(152),
            "{engine}: {}",
            stderr(&flagged)
        );
        assert!(
            stderr(&flagged).contains("CPU time budget"),
            "{engine}: {}",
            stderr(&flagged)
        );
        let by_annotation = run_bundle(&annotated, &["--engine", &engine]);
        assert_eq!(by_annotation.status.code(), Some(152), "{engine}");
    }
    // `hold` waits for stdin to close: a second of waiting against 0.3 s of budget.
    let hold = probe_bundle(&["hold"]).write(&dir.path().join("hold"));
    let mut waiting =
        crate::support::wasmux_command(&[], &["run", "--cpu-time", "0.3", hold.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    drop(waiting.stdin.take());
    let status = waiting.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a waiting guest was killed");
    let bad = probe_bundle(&["spin"])
        .annotation("wasmux.io/cpu-time", "lots")
        .write(&dir.path().join("bad"));
    let out = run_bundle(&bad, &[]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("wasmux.io/cpu-time"),
        "{}",
        stderr(&out)
    );
}

/// `wasm-<proposal>=off` makes wasmtime refuse a module that uses the proposal (here a
/// tail call), on by default; an engine without the switches refuses them by name.
#[test]
fn a_proposal_switched_off_refuses_the_module_that_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("tail.wat");
    std::fs::write(
        &module,
        r#"(module (func $done) (func (export "_start") (return_call $done)))"#,
    )
    .unwrap();
    let module = module.to_str().unwrap();
    let on = wasmux(&["run", "--engine", "wasmtime", module]);
    assert_eq!(on.status.code(), Some(0), "{}", stderr(&on));
    let off = wasmux(&[
        "run",
        "--engine",
        "wasmtime",
        "--engine-option",
        "wasm-tail-call=off",
        module,
    ]);
    assert_eq!(off.status.code(), Some(126), "{}", stderr(&off));
    assert!(stderr(&off).contains("tail call"), "{}", stderr(&off));
    let wasmer = wasmux(&[
        "run",
        "--engine",
        "wasmer",
        "--engine-option",
        "wasm-tail-call=off",
        module,
    ]);
    assert_eq!(wasmer.status.code(), Some(126), "{}", stderr(&wasmer));
    assert!(
        stderr(&wasmer).contains("wasmer does not support the wasm-<proposal> switches"),
        "{}",
        stderr(&wasmer)
    );
}
