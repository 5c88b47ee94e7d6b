//! What wasmux adds to an engine that lacks it in-engine (wasm3, WasmEdge, WAMR): a module
//! rewrite with fuel, memory-grow and call-depth guards ([`instrument()`]), and the host
//! side every such engine links the same way ([`GuardedHost`]): wasmux's sandboxed WASI
//! preview1 and the answers to the guards, from one table of [`imports`].
//!
//! An engine backend then only has to hand each import call over with the guest's
//! memory as a byte slice, and report how the call into the guest ended.

mod host;
pub mod instrument;
mod module;
mod prepare;
mod run;
mod thread;

pub use host::{Ended, GuardedHost, GuestMustEnd, Import, imports};
pub use instrument::{
    Guards, InitialSize, Instrumented, REWRITE_VERSION, RewriteError, UNGUARDED_VAR, instrument,
    rewrite_version, unguarded,
};
pub use module::{
    GUARDED_OPTIONS, GuardedCode, GuardedInstance, GuardedModule, GuardedSettings, NotInstantiated,
};
pub use prepare::{MAX_DEPTH, prepare, prepare_validated};
pub use wasmux_wasi_preview1::ValType;

#[cfg(test)]
mod tests;
