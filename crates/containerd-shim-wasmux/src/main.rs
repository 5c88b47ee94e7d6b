//! `containerd-shim-wasmux-v1`: runwasi's containerd shim library (`containerd-shim-wasm`)
//! with every wasmux engine behind it. containerd starts it for the runtime
//! `io.containerd.wasmux.v1`; youki's libcontainer (inside the library) makes the
//! container, and in its init process, after `pivot_root`, the sandbox (`sandbox.rs`)
//! maps the process to a wasmux `RunSpec` (the rootfs is `/`) and runs it with wasmux's
//! exit contract, loading compiled code from the node's precompile cache, which only a
//! helper process outside every container writes (`compile_service.rs`).

mod bundle_annotations;
mod compile_service;
mod engine_choice;
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

/// Where the cache lives when the environment does not say: a node-wide directory, as
/// containerd runs shims as root, often without `HOME`.
const NODE_CACHE_DIR: &str = "/var/cache/wasmux/modules";

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|a| a == compile_service::SERVICE_ARG)
    {
        return match args.next() {
            Some(dir) => compile_service::serve(dir.into()),
            None => std::process::ExitCode::FAILURE,
        };
    }
    // Not for containerd's `start` and `delete` calls, which end at once: for the shim
    // that serves containers. Before the library forks its zygote, which every
    // container process comes from.
    let serves = !std::env::args().any(|a| a == "start" || a == "delete");
    if serves {
        bundle_annotations::remember();
        compile_service::start(
            wasmux::Launcher::new()
                .cache_default(NODE_CACHE_DIR)
                .cache_location(),
        );
    }
    WasmuxShim::run(None);
    std::process::ExitCode::SUCCESS
}
