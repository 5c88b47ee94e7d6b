//! Where the built guest programs are.

use std::path::PathBuf;

/// The guests' cargo target directory, set by the build script.
const GUESTS_DIR: &str = env!("WASMUX_GUESTS_DIR");

/// A guest built for `wasm32-wasip1` (a core module): `hello` or `probe`.
pub fn core_module(name: &str) -> PathBuf {
    PathBuf::from(GUESTS_DIR).join(format!("wasm32-wasip1/release/{name}.wasm"))
}

/// A guest built for `wasm32-wasip2`, a component: `hello`, or `net` (`wasi:sockets`).
pub fn component(name: &str) -> PathBuf {
    PathBuf::from(GUESTS_DIR).join(format!("wasm32-wasip2/release/{name}.wasm"))
}
