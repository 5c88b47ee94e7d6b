//! The load step every guarded engine shares: validate, refuse unknown imports, rewrite.

use wasmux_core::{Error, Result, WasmBinary};

use crate::host::check_imports;
use crate::instrument::{Guards, Instrumented, instrument};

/// The deepest call nesting a guest may reach, on engines whose own limit is missing
/// or crashes the host, before it traps as a stack overflow. Deep enough for real
/// programs, and below what a Rust guest's 1 MiB shadow stack holds at 16 bytes a
/// frame (65,536), so runaway recursion ends as a stack overflow, as on engines with
/// a native stack limit, rather than as an out-of-bounds access.
pub const MAX_DEPTH: u32 = 20_000;

/// Validates `wasm` with wasmparser (some engines are no validators, and the rewrite
/// must only ever see valid modules), then [`prepare_validated`].
pub fn prepare(wasm: &WasmBinary, engine: &str, guards: Guards) -> Result<Instrumented> {
    wasmparser::Validator::new()
        .validate_all(&wasm.bytes)
        .map_err(|e| Error::invalid_module(&wasm.origin, e))?;
    prepare_validated(wasm, engine, guards)
}

/// For a module the engine has validated itself: refuses imports no guarded host
/// provides (a link error naming them) and rewrites it with `guards`.
pub fn prepare_validated(wasm: &WasmBinary, engine: &str, guards: Guards) -> Result<Instrumented> {
    check_imports(&wasm.bytes, engine).map_err(|message| Error::link(&wasm.origin, message))?;
    instrument(&wasm.bytes, guards).map_err(|e| Error::invalid_module(&wasm.origin, e))
}
