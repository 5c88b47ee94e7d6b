//! What the podman and containerd tests of wasmux-oci share beyond the common
//! end-to-end support (`wasmux_conformance::e2e`): the wasmux-oci wrapper they are
//! configured with, and the check that its state root is left empty.

use std::path::{Path, PathBuf};

pub use wasmux_conformance::e2e::*;

/// A script that runs this build's wasmux-oci with a private cache (and state root,
/// unless the caller passes `--root` itself), the way a user configures a runtime
/// whose flags the caller does not let them set.
pub fn wrapper(dir: &Path, own_root: bool) -> PathBuf {
    wrapper_of(Path::new(env!("CARGO_BIN_EXE_wasmux-oci")), dir, own_root)
}

/// [`wrapper`] of the wasmux-oci binary at `bin` (a copy a rootless user can run).
pub fn wrapper_of(bin: &Path, dir: &Path, own_root: bool) -> PathBuf {
    let path = dir.join("wasmux-oci");
    let root = if own_root {
        format!("--root {}", wrapper_state(dir).display())
    } else {
        String::new()
    };
    let script = format!(
        "#!/bin/sh\nWASMUX_CACHE_DIR={cache} exec {bin} {root} \"$@\"\n",
        cache = dir.join("cache").display(),
        bin = bin.display(),
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The state root the wrapper uses.
pub fn wrapper_state(dir: &Path) -> PathBuf {
    dir.join("wasmux-state")
}

/// The runtime root exists (so the runtime really used it) and holds no container.
pub fn holds_nothing(root: &Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(root).map_err(|e| format!("runtime root {}: {e}", root.display()))?;
    let left: Vec<_> = entries.filter_map(|e| Some(e.ok()?.file_name())).collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("left under {}: {left:?}", root.display()))
    }
}

/// `-v DIR:/data:ro` refuses the guest's write and `-v DIR:/data` takes it, through a
/// client's `run` (given the arguments after the runtime's).
pub fn volume_case(
    dir: &Path,
    run: impl Fn(&[&str]) -> std::process::Output,
) -> Result<(), String> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let volume = format!("{}:/data:ro", data.display());
    let out = run(&["-v", &volume, "wasm-probe", "write", "/data/x", "y"]);
    if out.status.success() || data.join("x").exists() {
        return Err(format!("wrote through ro: {out:?}"));
    }
    let rw = format!("{}:/data", data.display());
    expect(
        &run(&["-v", &rw, "wasm-probe", "write", "/data/x", "y"]),
        0,
        Some("wrote /data/x"),
    )
}

/// A client's `run -i ... wasm-probe echo`: what is written to its stdin reaches the
/// guest's.
pub fn stdin_case(mut client: std::process::Command) -> Result<(), String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = client
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    expect(&child.wait_with_output().unwrap(), 0, Some("through stdin"))
}

/// What a confinement probe expects of the container process.
pub struct Confined {
    /// Its uid and gid (all four of each: real, effective, saved, file system).
    pub user: &'static str,
    /// Its effective, permitted and bounding capability sets (`/proc`'s hex).
    pub capabilities: &'static str,
    /// In a user namespace of its own (a rootless client's), not the host's.
    pub user_namespace: bool,
}

impl Confined {
    /// `--user 1000:1000 --cap-drop all --security-opt no-new-privileges`.
    pub const UNPRIVILEGED: Confined = Confined {
        user: "1000",
        capabilities: "0000000000000000",
        user_namespace: false,
    };

    /// Rootless podman's `--cap-drop all --security-opt no-new-privileges`, run by
    /// `nobody`: root of podman's user namespace, `nobody` on the host.
    pub const ROOTLESS: Confined = Confined {
        user: "65534",
        capabilities: "0000000000000000",
        user_namespace: true,
    };
}

/// The confinement probe: the running container process `pid` has the user and
/// capabilities `want` says, no-new-privileges and a seccomp filter (the client's
/// default profile), namespaces of its own, and its rootfs as its root (never the
/// host's `/`).
pub fn confinement_case(pid: i32, want: &Confined) -> Result<(), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mut wrong = Vec::new();
    let expected = [
        ("Uid", vec![want.user; 4]),
        ("Gid", vec![want.user; 4]),
        ("CapEff", vec![want.capabilities]),
        ("CapPrm", vec![want.capabilities]),
        ("CapBnd", vec![want.capabilities]),
        ("NoNewPrivs", vec!["1"]),
        ("Seccomp", vec!["2"]),
    ];
    for (name, expected) in expected {
        let got = field(name);
        if got != expected {
            wrong.push(format!("{name} {got:?}, want {expected:?}"));
        }
    }
    let user_namespace = want.user_namespace.then_some("user");
    for ns in ["pid", "mnt", "ipc", "uts", "net"]
        .into_iter()
        .chain(user_namespace)
    {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}"));
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}"));
        match (theirs, ours) {
            (Ok(theirs), Ok(ours)) if theirs != ours => {}
            (theirs, _) => wrong.push(format!("{ns} namespace is the host's: {theirs:?}")),
        }
    }
    // Its root is the image's (which holds the module and no /usr), not the host's.
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    if !root.join("probe.wasm").is_file() || root.join("usr/bin").exists() {
        wrong.push("its root is not the image's rootfs".into());
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// `stop -t 20 NAME` through a podman- or Docker-like client, then its exit code (from
/// `inspect`), and the container removed.
pub fn stop_and_exit_code(
    client: impl Fn(&[&str]) -> std::process::Output,
    name: &str,
) -> Result<i32, String> {
    let _ = client(&["stop", "-t", "20", name]);
    let code = client(&["inspect", "--format", "{{.State.ExitCode}}", name]);
    let _ = client(&["rm", "--force", name]);
    String::from_utf8_lossy(&code.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("exit code of {name}: {e}"))
}
