//! The wasmer backend of wasmux: core modules compiled by wasmer's singlepass compiler,
//! with wasmux's own sandboxed WASI preview1 (`wasmux-wasi-preview1`, the one the
//! guarded engines link). It only translates a [`RunSpec`](wasmux_core::RunSpec)
//! into wasmer calls; every policy (mapping, limits, exit statuses) comes from
//! `wasmux-core`.
//!
//! - WASI: wasmux's preview1 bound as wasmer host functions (module `wasi`): the same
//!   errnos, read-only preopens and path resolution beneath each preopen as on wasm3,
//!   WAMR and WasmEdge, checked against wasmtime by the differential suite. (wasmer-wasix,
//!   wasmer's own WASIX, answered dozens of preview1 calls differently: the preopen `/`
//!   was not a directory, POSIX errnos came back as EPERM, `..` walked between preopens.)
//! - memory limit: per-run tunables whose memories account through `MemoryBudget`;
//! - kill and deadline: wasmer's host interrupt (a SIGUSR1 to the thread running the
//!   guest), so the compiled code carries no checks and runs at full speed;
//! - components: not supported by wasmer 7; refused as `Unsupported`.

mod memory;
mod outcome;
mod run;
mod signal;
mod wasi;

use wasmer::sys::{EngineBuilder, Singlepass};
use wasmux_core::{
    Artifact, Capabilities, Descriptor, Engine, EngineInfo, EngineOptions, Error,
    ONLY_WASMTIME_POOLS, OptionSupport, Precompile, Precompiler, Result, Support, Tier, WasmBinary,
};

/// The engine's name, as used by `--engine` and `run.oci.handler`.
pub const NAME: &str = DESCRIPTOR.name;

/// Name, wasmer release built against, and capabilities.
pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "wasmer",
    version: "7.4.2",
    capabilities: Capabilities {
        components: Support::Unsupported(
            "wasmer 7 runs core modules only; run components on wasmtime",
        ),
        memory_limit: Support::Supported,
        interrupt: Support::Supported,
        serve_http: Support::Unsupported(
            "it runs no components, and wasi:http proxies are components",
        ),
    },
    options: OptionSupport {
        pooling: Support::Unsupported(ONLY_WASMTIME_POOLS),
        stack_size: Support::Unsupported(
            "wasmer's guest stack size is process-wide (wasmer_vm::set_stack_size), not per engine",
        ),
        // Singlepass is a baseline compiler: `auto` is all it can do.
        tiers: &[Tier::Baseline, Tier::Auto],
        tier_refusal: "wasmer is built with singlepass only (its Cranelift would clash with wasmtime's)",
        wasm_features: Support::Unsupported(
            "wasmux builds wasmer's singlepass with its default proposals only",
        ),
    },
};

/// A wasmer engine (singlepass), shared by every module it loads and every run.
#[derive(Clone)]
pub struct WasmerEngine {
    engine: wasmer::Engine,
}

impl WasmerEngine {
    /// Builds the engine.
    pub fn new() -> Result<Self> {
        Self::with_options(&EngineOptions::default())
    }

    /// The engine with `options`: none changes it (singlepass is always a baseline
    /// compiler). [`DESCRIPTOR`] declares which options it accepts; wasmux's engine
    /// registry refuses the rest before building it.
    pub fn with_options(_options: &EngineOptions) -> Result<Self> {
        // Singlepass's default features cover what current rustc emits for wasip1
        // (bulk memory, multi-value, reference types, sign extension); the
        // conformance guests, built by the toolchain in use, prove it on every run.
        let engine: wasmer::Engine = EngineBuilder::new(Singlepass::default()).engine().into();
        // A first store installs wasmer's signal handlers; ours goes in front of them.
        drop(wasmer::Store::new(engine.clone()));
        signal::install()
            .map_err(|e| Error::engine_while(NAME, "installing the interrupt signal filter", e))?;
        Ok(WasmerEngine { engine })
    }
}

impl EngineInfo for WasmerEngine {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }
}

/// A module compiled by singlepass, ready to instantiate many times.
pub struct WasmerModule {
    module: wasmer::Module,
    engine: WasmerEngine,
}

impl WasmerEngine {
    fn module(&self, module: wasmer::Module) -> WasmerModule {
        WasmerModule {
            module,
            engine: self.clone(),
        }
    }
}

impl Engine for WasmerEngine {
    type Module = WasmerModule;

    fn load_module(&self, wasm: &WasmBinary) -> Result<WasmerModule> {
        let module = wasmer::Module::new(&self.engine, &wasm.bytes[..])
            .map_err(|e| Error::invalid_module(&wasm.origin, e))?;
        Ok(self.module(module))
    }

    fn precompiler(&self) -> Precompiler<'_, WasmerModule> {
        Precompiler::Available(self)
    }
}

impl Precompile<WasmerModule> for WasmerEngine {
    /// The compiler's identity and wasmer's artifact format.
    fn fingerprint(&self) -> String {
        format!(
            "{} {}",
            self.engine.deterministic_id(),
            self.engine.artifact_format()
        )
    }

    fn compile_for_cache(&self, wasm: &WasmBinary) -> Result<(WasmerModule, Vec<u8>)> {
        let module = self.load_module(wasm)?;
        let serialized = module
            .module
            .serialize()
            .map_err(|e| Error::engine_while(NAME, "serialising a compiled module", e))?;
        Ok((module, serialized.to_vec()))
    }

    fn load_precompiled(&self, _wasm: &WasmBinary, artifact: &Artifact) -> Result<WasmerModule> {
        // SAFETY: wasmer maps deserialized bytes as executable code. An `Artifact` only
        // comes from the precompile cache, after the BLAKE3 hash written with it matched,
        // under a key covering this engine's compiler and artifact format: the bytes
        // are what `compile_for_cache` serialised.
        #[allow(unsafe_code)]
        let module =
            unsafe { wasmer::Module::deserialize(&self.engine, artifact.bytes().to_vec()) }
                .map_err(|e| Error::engine_while(NAME, "loading a precompiled module", e))?;
        Ok(self.module(module))
    }
}
