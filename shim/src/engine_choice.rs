//! Which engine runs a container. containerd-shim-wasm 1.0.1 shows a sandbox the
//! process's args, env and entrypoint but not the spec's annotations, so
//! `run.oci.handler` cannot reach it; the engine comes from the runtime name instead
//! (`containerd-shim-wasmux-<engine>-v1`, a link to this binary, serves the runtime
//! `io.containerd.wasmux-<engine>.v1`), else `WASMUX_ENGINE` in the shim's own
//! environment (containerd's), else wasmux's default.

use std::path::Path;

/// The engine named by `argv0` (`containerd-shim-wasmux-<engine>-v1`), else by
/// `from_env`; `None` means wasmux's default.
pub(crate) fn engine_for(argv0: &str, from_env: Option<String>) -> Option<String> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    name.strip_prefix("containerd-shim-wasmux-")
        .and_then(|rest| rest.strip_suffix("-v1"))
        .map(str::to_owned)
        .or(from_env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_name_then_the_environment_picks_the_engine() {
        let env = || Some("wasm3".to_owned());
        assert_eq!(engine_for("/usr/bin/containerd-shim-wasmux-v1", None), None);
        assert_eq!(
            engine_for("containerd-shim-wasmux-v1", env()).as_deref(),
            Some("wasm3")
        );
        assert_eq!(
            engine_for("/x/containerd-shim-wasmux-wasmer-v1", env()).as_deref(),
            Some("wasmer")
        );
        assert_eq!(
            engine_for("containerd-shim-wasmux-wasmedge-aot-v1", None).as_deref(),
            Some("wasmedge-aot")
        );
    }
}
