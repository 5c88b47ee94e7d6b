//! `containerd-shim-wasmux-v1`: runwasi's containerd shim library (`containerd-shim-wasm`)
//! with every wasmux engine behind it. containerd starts it for the runtime
//! `io.containerd.wasmux.v1`; youki's libcontainer (inside the library) makes the
//! container, and in its init process, after `pivot_root`, the sandbox (`sandbox.rs`)
//! maps the process to a wasmux `RunSpec` (the rootfs is `/`) and runs it with wasmux's
//! exit contract, loading the module through the node's precompile cache
//! (`node_cache.rs`).

mod engine_choice;
mod node_cache;
mod sandbox;

use containerd_shim_wasm::shim::{Cli, Shim, Version, version};

use crate::sandbox::WasmuxSandbox;

/// The shim, as containerd-shim-wasm sees it.
struct WasmuxShim;

impl Shim for WasmuxShim {
    type Sandbox = WasmuxSandbox;

    fn name() -> &'static str {
        "wasmux"
    }

    fn version() -> Version {
        version!()
    }
}

fn main() {
    // Before the library forks its zygote, which every container process comes from.
    node_cache::open(
        wasmux::Launcher::new()
            .cache_default(node_cache::NODE_CACHE_DIR)
            .cache_location(),
    );
    WasmuxShim::run(None);
}
