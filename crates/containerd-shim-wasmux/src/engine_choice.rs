//! Which engine runs a container: the runtime name is the caller's choice
//! (`containerd-shim-wasmux-<engine>-v1`, a link to this binary, serves the runtime
//! `io.containerd.wasmux-<engine>.v1`) for wasmux's [`Launcher`](wasmux::Launcher),
//! over the annotations' `run.oci.handler` (`bundle_annotations`), over
//! `WASMUX_ENGINE` in containerd's environment, over wasmux's default.

use std::path::Path;

/// The engine named by `argv0` (`containerd-shim-wasmux-<engine>-v1`), if any.
pub(crate) fn engine_of_runtime_name(argv0: &str) -> Option<String> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    name.strip_prefix("containerd-shim-wasmux-")
        .and_then(|rest| rest.strip_suffix("-v1"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_name_picks_the_engine() {
        assert_eq!(
            engine_of_runtime_name("/usr/bin/containerd-shim-wasmux-v1"),
            None
        );
        assert_eq!(
            engine_of_runtime_name("/x/containerd-shim-wasmux-wasmer-v1").as_deref(),
            Some("wasmer")
        );
        assert_eq!(
            engine_of_runtime_name("containerd-shim-wasmux-wasmedge-aot-v1").as_deref(),
            Some("wasmedge-aot")
        );
    }
}
