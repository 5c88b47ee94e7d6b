//! wasmux's own settings for the runtime command. Its command line is runc's (handed
//! verbatim to the delegate), so they come from the environment, which podman
//! (`[engine] env` in containers.conf), containerd and wrapper scripts can all set.

use std::ffi::OsString;

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
