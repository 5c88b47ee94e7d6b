//! The wasm3 backend of wasmux: core modules on wasm3's interpreter, with wasmux's own
//! sandboxed WASI preview1 (`wasmux-wasi-preview1`). wasm3's bundled WASI is never
//! built: it preopens the host's working directory and hands out real host paths.
//!
//! - validation: every module goes through wasmparser's validator before wasm3 sees
//!   it, since wasm3 itself is not a validator;
//! - kill, deadline and memory limit: wasm3 has none, so modules are rewritten to poll
//!   the run on every loop iteration's fuel and to ask before each `memory.grow`
//!   ([`wasmux_guard::instrument()`]);
//! - each run gets its own wasm3 environment on its own thread, with a native stack
//!   large enough for wasm3's recursive interpreter;
//! - components: not supported by wasm3; refused as `Unsupported`.

mod ffi;
mod outcome;
mod run;

use std::sync::Arc;

use wasmux_core::{
    Capabilities, Descriptor, Engine, EngineInfo, EngineOptions, Precompiler, Result, Support,
    WasmBinary,
};
use wasmux_guard::{GUARDED_OPTIONS, GuardedModule, GuardedSettings, Guards, prepare};

/// The engine's name, as used by `--engine` and `run.oci.handler`.
pub const NAME: &str = DESCRIPTOR.name;

/// Name, wasm3 release (as bundled by wasm3x-sys 0.2.1), and capabilities.
pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "wasm3",
    version: "0.9.0",
    capabilities: Capabilities {
        components: Support::Unsupported(
            "wasm3 runs core modules only; run components on wasmtime",
        ),
        memory_limit: Support::Supported,
        interrupt: Support::Supported,
        serve_http: Support::Unsupported(
            "it runs no components, and wasi:http proxies are components",
        ),
    },
    options: GUARDED_OPTIONS,
};

/// The wasm3 interpreter. It holds only its settings: wasm3's environments cannot move
/// between threads, so each run makes its own.
#[derive(Debug, Clone, Default)]
pub struct Wasm3Engine {
    settings: GuardedSettings,
}

impl Wasm3Engine {
    /// The engine; infallible, but shaped like the other backends' constructors.
    pub fn new() -> Result<Self> {
        Ok(Self::default())
    }

    /// The engine with `options` (`stack_size`: the run thread's stack).
    pub fn with_options(options: &EngineOptions) -> Result<Self> {
        Ok(Wasm3Engine {
            settings: GuardedSettings::from_options(options),
        })
    }
}

impl EngineInfo for Wasm3Engine {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }
}

/// A validated, instrumented module; each run compiles it in its own wasm3 environment.
pub type Wasm3Module = GuardedModule<Wasm3Code>;

/// wasm3's part of a loaded module: the instrumented bytes.
pub struct Wasm3Code {
    bytes: Arc<[u8]>,
}

impl Engine for Wasm3Engine {
    type Module = Wasm3Module;

    fn load_module(&self, wasm: &WasmBinary) -> Result<Wasm3Module> {
        // No trial compile here: wasm3 compiles only inside a runtime that has allocated
        // the module's initial memory, which must wait for the run's memory limit. What
        // wasm3 cannot compile is a link error of the run.
        let guards = Guards::default();
        let instrumented = prepare(wasm, NAME, guards)?;
        let code = Wasm3Code {
            bytes: instrumented.bytes.into(),
        };
        Ok(GuardedModule::new(
            code,
            wasm,
            instrumented.initial,
            guards,
            self.settings,
        ))
    }

    fn precompiler(&self) -> Precompiler<'_, Wasm3Module> {
        Precompiler::Unavailable(
            "wasm3 interprets the module as loaded; there is no native code to keep",
        )
    }
}

#[cfg(test)]
mod tests;
