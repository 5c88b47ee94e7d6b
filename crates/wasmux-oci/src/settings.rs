//! wasmux's own settings for the runtime command. Its command line is runc's (handed
//! verbatim to the delegate), so they come from the environment, which podman
//! (`[engine] env` in containers.conf), containerd and wrapper scripts can all set.

use std::ffi::OsString;
use std::path::PathBuf;

use wasmux::Launcher;
/// The runtime that runs Linux (non-Wasm) containers: a name on PATH or a path;
/// `none` turns delegation off. Default: `runc`.
pub const DELEGATE_VAR: &str = "WASMUX_OCI_DELEGATE";
/// The cache directory for a caller without `HOME` or `XDG_CACHE_HOME` (as services
/// often run).
const SYSTEM_CACHE_DIR: &str = "/var/cache/wasmux/modules";

/// The delegate runtime, or `None` when delegation is off.
pub fn delegate() -> Option<OsString> {
    match std::env::var_os(DELEGATE_VAR) {
        Some(v) if v == "none" => None,
        Some(v) if !v.is_empty() => Some(v),
        _ => Some("runc".into()),
    }
}

/// How containers are launched: the engine by the one rule (the bundle's
/// `run.oci.handler`, else `WASMUX_ENGINE`, else the default; `WASMUX_ALLOWED_ENGINES`
/// limits them all), and the precompile cache every container of this host shares:
/// `WASMUX_CACHE=off` turns it off, `WASMUX_CACHE_DIR` moves it; otherwise the user's
/// cache directory, or /var/cache/wasmux/modules for a caller without `HOME`.
pub fn launcher() -> Launcher {
    Launcher::new().cache_default_when_homeless(SYSTEM_CACHE_DIR)
}

/// The state root without `--root`, as runc chooses its own: `/run/wasmux-oci`, or
/// `$XDG_RUNTIME_DIR/wasmux-oci` for a rootless caller (not root, or root only inside
/// a user namespace, as rootless podman runs its runtime), who cannot write `/run`.
pub fn default_root() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() && rootless() => PathBuf::from(dir).join("wasmux-oci"),
        _ => PathBuf::from("/run/wasmux-oci"),
    }
}

/// Not root, or root of a user namespace (whose uid map is not the whole range).
pub fn rootless() -> bool {
    if !rustix::process::geteuid().is_root() {
        return true;
    }
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let whole = map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    !whole && !map.trim().is_empty()
}
