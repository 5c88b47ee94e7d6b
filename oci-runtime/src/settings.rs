//! wasmux's own settings for the runtime command. Its command line is runc's (handed
//! verbatim to the delegate), so they come from the environment, which podman
//! (`[engine] env` in containers.conf), containerd and wrapper scripts can all set.

use std::ffi::OsString;

use wasmux::{CacheSetting, PrecompileCache};

/// The engine for containers without a `run.oci.handler=<engine>` annotation.
pub const ENGINE_VAR: &str = "WASMUX_ENGINE";
/// The runtime that runs Linux (non-Wasm) containers: a name on PATH or a path;
/// `none` turns delegation off. Default: `runc`.
pub const DELEGATE_VAR: &str = "WASMUX_OCI_DELEGATE";
/// The base cache directory for a caller without `HOME` or `XDG_CACHE_HOME` (as
/// services often run): the cache lands in /var/cache/wasmux/modules.
const SYSTEM_CACHE_BASE: &str = "/var/cache";

/// The configured default engine, if any.
pub fn default_engine() -> Option<String> {
    std::env::var(ENGINE_VAR).ok().filter(|e| !e.is_empty())
}

/// The delegate runtime, or `None` when delegation is off.
pub fn delegate() -> Option<OsString> {
    match std::env::var_os(DELEGATE_VAR) {
        Some(v) if v == "none" => None,
        Some(v) if !v.is_empty() => Some(v),
        _ => Some("runc".into()),
    }
}

/// The precompile cache every container of this host shares: `WASMUX_CACHE=off`
/// turns it off, `WASMUX_CACHE_DIR` moves it; otherwise the user's cache directory,
/// or /var/cache/wasmux/modules for a caller without `HOME` (as services often run).
/// An unusable cache is logged and the container runs uncached.
pub fn cache() -> Option<PrecompileCache> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let setting = CacheSetting::from_vars(|name| {
        let no_home = var("XDG_CACHE_HOME").is_none() && var("HOME").is_none();
        match name {
            "XDG_CACHE_HOME" if no_home => Some(SYSTEM_CACHE_BASE.into()),
            _ => var(name),
        }
    });
    let CacheSetting::Dir(dir) = setting else {
        return None;
    };
    match PrecompileCache::open(&dir) {
        Ok(cache) => Some(cache),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "precompile cache unusable; running uncached");
            None
        }
    }
}
