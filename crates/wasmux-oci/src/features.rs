//! `features` (runc ≥ 1.1's JSON) and what `--version` says: what a caller may rely on.

/// The runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.0.2";

/// Mount options libcontainer applies (as the kernel's mount flags).
const MOUNT_OPTIONS: &[&str] = &[
    "bind",
    "rbind",
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "noatime",
    "atime",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// The `features` document: the container libcontainer builds (namespaces,
/// capabilities, seccomp, cgroups v1, v2 and systemd); annotations name the engines and
/// Wasm variants.
pub fn document() -> serde_json::Value {
    let engines: Vec<&str> = wasmux::ENGINES.iter().map(|e| e.name).collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": CAPABILITIES,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true},
            "seccomp": {"enabled": true},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {
            "io.github.wasmux.engines": engines.join(","),
            "io.github.wasmux.delegate": "non-Wasm entrypoints run on the delegate runtime (WASMUX_OCI_DELEGATE, default runc)",
            "module.wasm.image/variant": "compat,compat-smart",
            "run.oci.handler": format!("wasm,wasm-smart,{}", engines.join(",")),
        },
    })
}

/// Every capability a spec may name (the kernel's, as runc lists them).
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// `--version`'s text after the name: wasmux's version, the spec, the engines.
pub fn version_text() -> String {
    let engines: Vec<&str> = wasmux::ENGINES.iter().map(|e| e.name).collect();
    format!(
        "{}\nspec: {OCI_VERSION}\nengines: {}",
        env!("CARGO_PKG_VERSION"),
        engines.join(", ")
    )
}
