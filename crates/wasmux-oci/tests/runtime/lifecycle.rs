//! wasmux-oci's lifecycle driven the way conmon and containerd's runc shim drive it:
//! `create` with the container's stdio, `start`, `state`, `kill`, `delete`, with this
//! test process as the subreaper that collects the container's exit status.

use crate::harness::{self, Runtime, probe_bundle};
use std::path::PathBuf;

use serde_json::Value;

#[test]
fn hello_goes_through_the_whole_lifecycle_and_leaves_nothing() {
    let rt = Runtime::new();
    let bundle = rt.bundle("hello", harness::hello_builder());
    let c = rt.create("hello-1", &bundle).expect("create");
    let state = rt.state("hello-1");
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"], c.pid);
    assert_eq!(state["ociVersion"], "1.0.2");
    assert_eq!(state["bundle"], bundle.to_str().unwrap());
    rt.ok(&["start", "hello-1"]);
    assert_eq!(c.wait(), 0);
    assert_eq!(c.stdout(), "Hello from a Wasm container, run by wasmux!\n");
    assert_eq!(rt.state("hello-1")["status"], "stopped");
    rt.ok(&["delete", "hello-1"]);
    assert!(rt.is_empty(), "delete must leave nothing under the root");
}

#[test]
fn exit_codes_follow_the_contract() {
    let rt = Runtime::new();
    for (id, args, want) in [
        ("exit-7", &["exit", "7"][..], 7),
        ("exit-255", &["exit", "255"][..], 255),
        ("trap", &["trap", "unreachable"][..], 134),
    ] {
        let c = rt.create(id, &rt.bundle(id, probe_bundle(args))).expect(id);
        rt.ok(&["start", id]);
        assert_eq!(c.wait(), want, "{id}");
        rt.ok(&["delete", id]);
    }
    let oom = rt.bundle(
        "oom",
        probe_bundle(&["alloc", "128"]).memory_limit(32 << 20),
    );
    let c = rt.create("oom", &oom).unwrap();
    rt.ok(&["start", "oom"]);
    assert_eq!(c.wait(), 137, "memory limit");
    rt.ok(&["delete", "oom"]);
}

#[test]
fn env_is_exactly_the_specs() {
    let rt = Runtime::new();
    let bundle = rt.bundle("env", probe_bundle(&["env"]).env(&["A=1", "B=two=2"]));
    let c = rt.create("env", &bundle).unwrap();
    rt.ok(&["start", "env"]);
    assert_eq!(c.wait(), 0);
    assert_eq!(c.stdout(), "A=\"1\"\nB=\"two=2\"\n");
    rt.ok(&["delete", "env"]);
}

#[test]
fn sigterm_ends_a_running_guest_with_143() {
    let rt = Runtime::new();
    let bundle = rt.bundle("spin", probe_bundle(&["spin"]).tmpfs("/tmp"));
    let c = rt.create("spin", &bundle).unwrap();
    rt.ok(&["start", "spin"]);
    assert_eq!(rt.state("spin")["status"], "running");
    let refused = rt.fails(&["delete", "spin"]);
    assert!(refused.contains("not stopped: running"), "{refused}");
    rt.ok(&["kill", "spin", "TERM"]);
    assert_eq!(c.wait(), 143);
    let refused = rt.fails(&["kill", "spin", "KILL"]);
    assert!(refused.contains("not running"), "{refused}");
    rt.ok(&["delete", "spin"]);
    assert!(rt.is_empty());
}

#[test]
fn delete_force_kills_a_running_container_and_a_created_one_needs_no_force() {
    let rt = Runtime::new();
    let bundle = rt.bundle("spin", probe_bundle(&["spin"]));
    let running = rt.create("running", &bundle).unwrap();
    rt.ok(&["start", "running"]);
    rt.ok(&["delete", "--force", "running"]);
    assert_eq!(running.wait(), 128 + 9);
    let created = rt.create("created", &bundle).unwrap();
    rt.ok(&["delete", "created"]);
    assert_eq!(created.wait(), 128 + 9);
    assert!(rt.is_empty());
    rt.ok(&["delete", "--force", "never-existed"]);
}

#[test]
fn commands_in_the_wrong_state_are_refused() {
    let rt = Runtime::new();
    let c = rt
        .create("once", &rt.bundle("ret", probe_bundle(&["return"])))
        .unwrap();
    rt.ok(&["start", "once"]);
    assert_eq!(c.wait(), 0);
    let again = rt.fails(&["start", "once"]);
    assert!(again.contains("stopped, not created"), "{again}");
    let missing = rt.fails(&["start", "nope"]);
    assert!(missing.contains("does not exist"), "{missing}");
    let missing = rt.fails(&["state", "nope"]);
    assert!(missing.contains("does not exist"), "{missing}");
    let dup = rt
        .create("once", &rt.bundle("ret2", probe_bundle(&["return"])))
        .unwrap_err();
    assert!(dup.contains("container with id exists"), "{dup}");
    rt.ok(&["delete", "once"]);
}

#[test]
fn malicious_ids_are_refused_by_every_command() {
    let rt = Runtime::new();
    let outside = rt.root().parent().unwrap().join("victim");
    std::fs::create_dir_all(&outside).unwrap();
    for id in ["../victim", "a/b", "..", ""] {
        for cmd in [
            &["state", id][..],
            &["kill", id],
            &["delete", "--force", id],
            &["start", id],
        ] {
            let err = rt.fails(cmd);
            assert!(err.contains("invalid container id"), "{cmd:?}: {err}");
        }
    }
    assert!(outside.is_dir());
}

#[test]
fn bad_bundles_fail_create_with_wasmuxs_message_in_the_log_and_leave_nothing() {
    let rt = Runtime::new();
    let malformed = rt.bundle("malformed", probe_bundle(&["return"]));
    std::fs::write(malformed.join("config.json"), b"{\"ociVersion\": ").unwrap();
    let missing = rt.bundle("missing", probe_bundle(&[]).args(["/not-there.wasm"]));
    let invalid = rt.bundle(
        "invalid",
        wasmux_conformance::bundle::BundleBuilder::default()
            .file("/bad.wasm", b"\0asm\x01\0\0\0\x05\x03".to_vec())
            .args(["/bad.wasm"])
            .annotation("module.wasm.image/variant", "compat"),
    );
    for (id, bundle, code, needle) in [
        ("malformed", &malformed, 125, "invalid OCI bundle config"),
        (
            "missing",
            &missing,
            127,
            "entrypoint /not-there.wasm not found",
        ),
        ("invalid", &invalid, 126, "invalid module"),
    ] {
        let (status, stderr) = rt.create_status(id, bundle);
        assert_eq!(status, Some(code), "{id}: {stderr}");
        assert!(stderr.contains(needle), "{id}: {stderr}");
        let last = rt.last_log_error().expect("an error line in the log");
        assert!(last.contains(needle), "{id}: {last}");
        assert!(rt.is_empty(), "{id}: create must leave nothing behind");
    }
}

#[test]
fn unsupported_commands_say_so_and_fail() {
    let rt = Runtime::new();
    for cmd in [
        &["exec", "x", "/bin/sh"][..],
        &["pause", "x"],
        &["checkpoint", "x"],
        &["update", "x"],
        &["ps", "x"],
    ] {
        let err = rt.fails(cmd);
        assert!(
            err.contains("not supported for Wasm containers"),
            "{cmd:?}: {err}"
        );
    }
    assert!(rt.fails(&["frobnicate"]).contains("unknown command"));
}

#[test]
fn features_and_version_describe_the_runtime() {
    let rt = Runtime::new();
    let features: Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert_eq!(features["ociVersionMax"], "1.0.2");
    let engines = features["annotations"]["io.github.wasmux.engines"]
        .as_str()
        .unwrap();
    assert!(engines.starts_with("wasmtime"), "{engines}");
    let version = rt.ok(&["--version"]);
    assert!(
        version.starts_with("wasmux-oci ") && version.contains("spec: 1.0.2"),
        "{version}"
    );
}

#[test]
fn each_engine_runs_by_annotation() {
    let rt = Runtime::new();
    for engine in harness::engines() {
        let bundle = rt.bundle(
            &engine,
            harness::hello_builder().annotation("run.oci.handler", &engine),
        );
        let c = rt.create(&engine, &bundle).unwrap();
        rt.ok(&["start", &engine]);
        assert_eq!(c.wait(), 0, "{engine}");
        assert_eq!(
            c.stdout(),
            "Hello from a Wasm container, run by wasmux!\n",
            "{engine}"
        );
        rt.ok(&["delete", &engine]);
    }
}

#[test]
fn linux_containers_go_to_the_delegate_with_the_same_command_line() {
    let rt = Runtime::new();
    let delegate = rt.fake_delegate();
    let bundle = rt.bundle(
        "native",
        wasmux_conformance::bundle::BundleBuilder::default()
            .file("/hello", b"\x7fELF\x02\x01\x01\0".to_vec())
            .args(["/hello"])
            .annotation("module.wasm.image/variant", "compat-smart"),
    );
    let with_delegate = [("WASMUX_OCI_DELEGATE", delegate.to_str().unwrap())];
    let (status, stderr) = rt.create_status_env("native", &bundle, &with_delegate);
    assert_eq!(status, Some(0), "{stderr}");
    rt.ok_env(&["kill", "native", "9"], &with_delegate);
    let calls = std::fs::read_to_string(delegate.with_extension("calls")).unwrap();
    let root = rt.root().display().to_string();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 2, "{calls}");
    assert!(
        lines[0].starts_with(&format!("--root {root} --log ")),
        "{calls}"
    );
    let create = format!("create --bundle {} --pid-file ", bundle.display());
    assert!(
        lines[0].contains(&create) && lines[0].ends_with(" native"),
        "{calls}"
    );
    assert!(lines[1].ends_with("kill native 9"), "{calls}");

    let off = [("WASMUX_OCI_DELEGATE", "none")];
    let (status, stderr) = rt.create_status_env("native2", &bundle, &off);
    assert_ne!(status, Some(0));
    assert!(stderr.contains("no delegate runtime"), "{stderr}");
}

#[test]
fn a_console_socket_gets_a_pty_that_is_the_guests_terminal() {
    let rt = Runtime::new();
    let bundle = rt.bundle("tty", probe_bundle(&["tty"]));
    let console = harness::ConsoleSocket::new(rt.root().parent().unwrap());
    let c = rt
        .create_with("tty", &bundle, &["--console-socket", console.path()])
        .unwrap();
    let master = console.receive();
    rt.ok(&["start", "tty"]);
    assert_eq!(c.wait(), 0);
    let output = harness::read_pty(master);
    assert!(output.contains("stdout=true"), "{output:?}");
    rt.ok(&["delete", "tty"]);
}

#[test]
fn concurrent_lifecycles_of_different_ids_each_get_their_own_output() {
    let rt = Runtime::new();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                let id = format!("c{i}");
                let bundle = rt.bundle(&id, probe_bundle(&["args", &id]));
                let c = rt.create(&id, &bundle).unwrap();
                rt.ok(&["start", &id]);
                assert_eq!(c.wait(), 0);
                assert!(
                    c.stdout().contains(&format!("2:\"{id}\"")),
                    "{}",
                    c.stdout()
                );
                rt.ok(&["delete", &id]);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(rt.is_empty());
}

#[test]
fn the_container_joins_its_cgroup_with_its_cpu_and_pids_limits_and_delete_removes_it() {
    let rt = Runtime::new();
    let bundle = rt.bundle("capped", probe_bundle(&["spin"]));
    let parent = format!("wasmux-oci-test-{}", std::process::id());
    let path = format!("/{parent}/capped");
    harness::patch_config(&bundle, |config| {
        config["linux"]["cgroupsPath"] = path.as_str().into();
        config["linux"]["resources"] = serde_json::json!({
            "cpu": {"quota": 50000, "period": 100000, "shares": 512},
            "pids": {"limit": 7},
        });
    });
    let c = rt.create("capped", &bundle).unwrap();
    let cgroup_table = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid)).unwrap();
    let placed = cgroup_table.lines().any(|l| l.ends_with(&path));
    if placed {
        assert_eq!(
            harness::cgroup_limits(c.pid),
            (Some("50000".into()), Some("7".into())),
            "{cgroup_table}"
        );
    } else {
        // A host that does not let this process manage cgroups: said, not claimed.
        let warning =
            std::fs::read_to_string(rt.root().parent().unwrap().join("log.json")).unwrap();
        assert!(
            warning.contains("could not place the container in its cgroup"),
            "{cgroup_table}\n{warning}"
        );
    }
    rt.ok(&["start", "capped"]);
    // Reaped while delete runs, as conmon or the shim would: on cgroup v1 an unreaped
    // zombie keeps its cgroup busy.
    let reaper = std::thread::spawn(move || c.wait());
    rt.ok(&["delete", "--force", "capped"]);
    assert_eq!(reaper.join().unwrap(), 137);
    let leftovers: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path().join(&parent)))
        .filter(|p| p.is_dir())
        .collect();
    for dir in &leftovers {
        assert!(
            !dir.join("capped").exists(),
            "delete left {}",
            dir.display()
        );
        std::fs::remove_dir(dir).unwrap();
    }
}

#[test]
fn a_spec_without_a_mount_namespace_is_refused_and_mounts_nothing_on_the_host() {
    let rt = Runtime::new();
    let bundle = rt.bundle("hostmounts", probe_bundle(&["exit", "0"]));
    harness::patch_config(&bundle, |config| {
        let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|n| n["type"] != "mount");
    });
    let (code, stderr) = rt.create_status("hostmounts", &bundle);
    assert_eq!(code, Some(1), "{stderr}");
    let error = rt.last_log_error().unwrap_or(stderr);
    assert!(error.contains("no mount namespace"), "{error}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let rootfs = bundle.join("rootfs");
    assert!(
        !mounts.contains(rootfs.to_str().unwrap()),
        "mounts left under {}:\n{mounts}",
        rootfs.display()
    );
    assert!(rt.is_empty());
}

#[test]
fn a_global_flag_given_twice_takes_its_last_value_as_with_runc() {
    let rt = Runtime::new();
    let other = rt.root().parent().unwrap().join("other-root");
    let features = rt.ok(&["--root", other.to_str().unwrap(), "features"]);
    assert!(features.contains("ociVersionMax"));
    let missing = rt.fails(&["--root", other.to_str().unwrap(), "state", "x"]);
    assert!(missing.contains("does not exist"), "{missing}");
    assert!(other.is_dir(), "the later --root is the one used");
}

/// `create` SIGKILLed at any moment of its work (a sweep of delays across a whole
/// create: before the state directory, around the container processes' forks and the
/// record, after the pid file) leaves a state `state` answers and `delete --force`
/// clears: no directory under the root, no process of the container, no cgroup.
#[test]
fn create_killed_at_any_moment_leaves_what_delete_force_clears() {
    let rt = Runtime::new();
    let bundle = rt.bundle("killed", probe_bundle(&["spin"]));
    let started = std::time::Instant::now();
    let whole = rt.create("whole", &bundle).unwrap();
    let span = started.elapsed();
    rt.ok(&["delete", "--force", "whole"]);
    whole.wait();
    for step in 0..24u32 {
        let id = format!("killed-{}-{step}", std::process::id());
        let mut create = rt.create_command(&id, &bundle).spawn().unwrap();
        std::thread::sleep(span * step / 20);
        let _ = create.kill();
        let _ = create.wait();
        let state = rt.output_of(&["state", &id]);
        let said = String::from_utf8_lossy(&state.stderr);
        assert!(
            state.status.success() || said.contains("does not exist"),
            "step {step}: state answered {state:?}"
        );
        delete_force_clears(&rt, &id, step);
    }
    assert!(rt.is_empty());
}

/// `delete --force ID` succeeds (or says it does not exist) and leaves no directory,
/// no live process and no cgroup of the container.
fn delete_force_clears(rt: &Runtime, id: &str, step: u32) {
    let deleted = rt.output_of(&["delete", "--force", id]);
    let said = String::from_utf8_lossy(&deleted.stderr);
    assert!(
        deleted.status.success() || said.contains("does not exist"),
        "step {step}: delete --force: {said}"
    );
    assert!(
        !rt.root().join(id).exists(),
        "step {step}: its directory is left"
    );
    let alive = processes_naming(id);
    assert!(alive.is_empty(), "step {step}: processes left: {alive:?}");
    let cgroups = cgroups_naming(id);
    assert!(cgroups.is_empty(), "step {step}: cgroups left: {cgroups:?}");
}

/// The cgroup directories, in any hierarchy, whose name holds `id` (libcontainer's
/// default is `:youki:ID` under each hierarchy's root).
fn cgroups_naming(id: &str) -> Vec<PathBuf> {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    hierarchies
        .filter_map(Result::ok)
        .flat_map(|h| std::fs::read_dir(h.path()).into_iter().flatten())
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(id))
        .map(|e| e.path())
        .collect()
}

/// `delete --force` SIGKILLed at any moment of its work (a sweep across a whole
/// delete of a created container) leaves what a second `delete --force` clears.
#[test]
fn delete_killed_at_any_moment_leaves_what_another_delete_clears() {
    let rt = Runtime::new();
    let bundle = rt.bundle("deleted", probe_bundle(&["spin"]));
    let whole = rt.create("whole-delete", &bundle).unwrap();
    let started = std::time::Instant::now();
    rt.ok(&["delete", "--force", "whole-delete"]);
    let span = started.elapsed();
    whole.wait();
    for step in 0..24u32 {
        let id = format!("deleted-{}-{step}", std::process::id());
        let container = rt.create(&id, &bundle).unwrap();
        let mut delete = rt.delete_command(&id).spawn().unwrap();
        std::thread::sleep(span * step / 20);
        let _ = delete.kill();
        let _ = delete.wait();
        delete_force_clears(&rt, &id, step);
        container.wait();
    }
    assert!(rt.is_empty());
}

/// Live (not zombie) processes whose command line names `id`: `create` and what
/// libcontainer forks from it (the intermediate process and the init).
fn processes_naming(id: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let named = cmdline.split(|b| *b == 0).any(|arg| arg == id.as_bytes());
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            named && !status.contains("State:\tZ")
        })
        .collect()
}

/// The node's cache deleted between `create` and `start` costs the container nothing:
/// its init loads from the sealed copy `create` handed it and writes no cache, and the
/// next `create` makes the directory again.
#[test]
fn the_cache_deleted_under_a_created_container_costs_nothing() {
    let rt = Runtime::new();
    let bundle = rt.bundle("uncached", probe_bundle(&["args", "x"]));
    let cache = rt.root().parent().unwrap().join("cache");
    for id in ["uncached", "again"] {
        let c = rt.create(id, &bundle).unwrap();
        assert!(cache.is_dir(), "{id}: create filled the cache");
        std::fs::remove_dir_all(&cache).unwrap();
        rt.ok(&["start", id]);
        assert_eq!(c.wait(), 0, "{id}");
        assert!(c.stdout().contains("2:\"x\""), "{id}: {}", c.stdout());
        // Nothing in the container writes the node's cache.
        assert!(!cache.exists(), "{id}: the container made the cache again");
        rt.ok(&["delete", id]);
    }
    assert!(rt.is_empty());
}
