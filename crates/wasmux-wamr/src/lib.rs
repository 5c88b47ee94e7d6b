//! The WAMR (WebAssembly Micro Runtime) backend of wasmux: core modules on WAMR 2.4's
//! fast interpreter, with wasmux's own sandboxed WASI preview1 (`wasmux-wasi-preview1`).
//!
//! - WASI: WAMR's `libc-wasi` is never built: its preopens cannot be read-only (every
//!   preopened directory gets full rights). wasmux links its own WASI instead, as for
//!   wasm3 and WasmEdge, with stdio from any file descriptor and exit statuses intact;
//! - kill, deadline, memory limit and call depth: the module is rewritten once at load
//!   ([`wasmux_guard`]): loop and function-entry fuel polls the run, `memory.grow` asks
//!   the budget first, and calls nest at most [`MAX_DEPTH`]
//!   deep. WAMR's own `wasm_runtime_terminate` stops a running loop only when WAMR is
//!   built with its thread manager, which splits the guest's stack between threads;
//! - each run gets a fresh instance on a thread of its own with a 2 MiB WAMR stack;
//!   the loaded module is shared by every run;
//! - components: not supported by WAMR; refused as `Unsupported`.

mod ffi;
mod outcome;
mod run;

use std::sync::Arc;

use wasmux_core::{
    Capabilities, Descriptor, Engine, EngineInfo, EngineOptions, Error, Precompiler, Result,
    Support, WasmBinary,
};
use wasmux_guard::{GUARDED_OPTIONS, GuardedModule, GuardedSettings, Guards, MAX_DEPTH, prepare};

/// The engine's name, as used by `--engine` and `run.oci.handler`.
pub const NAME: &str = DESCRIPTOR.name;

/// Name, WAMR release (as bundled by wamrx-sys 0.3.0), and capabilities.
pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "wamr",
    version: "2.4.3",
    capabilities: Capabilities {
        components: Support::Unsupported("WAMR runs core modules only; run components on wasmtime"),
        memory_limit: Support::Supported,
        interrupt: Support::Supported,
        serve_http: Support::Unsupported(
            "it runs no components, and wasi:http proxies are components",
        ),
    },
    options: GUARDED_OPTIONS,
};

/// WAMR's fast interpreter. The runtime itself is process-global and set up once, by
/// the first engine made.
#[derive(Debug, Clone)]
pub struct WamrEngine {
    settings: GuardedSettings,
}

impl WamrEngine {
    /// The engine; fails only if WAMR cannot set up its runtime.
    pub fn new() -> Result<Self> {
        Self::with_options(&EngineOptions::default())
    }

    /// The engine with `options` (`stack_size`: the run thread's stack).
    pub fn with_options(options: &EngineOptions) -> Result<Self> {
        let settings = GuardedSettings::from_options(options);
        ffi::runtime().map_err(|e| Error::engine_while(NAME, "setting up the runtime", e))?;
        Ok(WamrEngine { settings })
    }
}

impl EngineInfo for WamrEngine {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }
}

/// A validated, instrumented module, loaded into WAMR once and instantiated afresh by
/// each run.
pub type WamrModule = GuardedModule<WamrCode>;

/// WAMR's part of a loaded module: the module loaded into WAMR.
pub struct WamrCode {
    module: Arc<ffi::Module>,
}

impl Engine for WamrEngine {
    type Module = WamrModule;

    fn load_module(&self, wasm: &WasmBinary) -> Result<WamrModule> {
        let guards = Guards {
            max_depth: Some(MAX_DEPTH),
        };
        let instrumented = prepare(wasm, NAME, guards)?;
        let module = ffi::Module::load(&instrumented.bytes)
            .map_err(|message| Error::invalid_module(&wasm.origin, format!("WAMR: {message}")))?;
        let code = WamrCode {
            module: Arc::new(module),
        };
        Ok(GuardedModule::new(
            code,
            wasm,
            instrumented.initial,
            guards,
            self.settings,
        ))
    }

    fn precompiler(&self) -> Precompiler<'_, WamrModule> {
        Precompiler::Unavailable(
            "this WAMR build is its fast interpreter only; there is no native code to keep",
        )
    }
}

#[cfg(test)]
mod tests;
