//! The WasmEdge backend of wasmux: core modules on WasmEdge 0.14, interpreted or
//! compiled ahead of time by its LLVM compiler, with wasmux's own sandboxed WASI
//! preview1 linked as host functions (`wasmux-guard`).
//!
//! - WASI: WasmEdge's own cannot take stdio file descriptors in 0.14 and preopens by
//!   host path strings; wasmux's gives every engine the same sandbox, read-only mounts
//!   and exit codes;
//! - kill and deadline: WasmEdge's only stop, `WasmEdge_AsyncCancel`, misses
//!   recursion that LLVM turned into a loop, and its async thread has a fixed native
//!   stack that AOT recursion overflows into a crash of the host. Modules are instead
//!   rewritten to poll the run on loop fuel (as for wasm3) and run synchronously on a
//!   thread of wasmux's with a large stack;
//! - call depth: the interpreter keeps frames on the heap with no limit (unbounded
//!   recursion would eat the host's memory) and AOT code has no stack check, so the
//!   rewrite bounds depth at [`MAX_DEPTH`] and reports a stack overflow;
//! - memory limit: the rewrite asks the run's budget before each `memory.grow`;
//! - an AOT section in the image's module is never used: the interpreter is forced,
//!   and the AOT engine compiles its own;
//! - components: not supported by WasmEdge 0.14's C API; refused as `Unsupported`.

mod ffi;
mod outcome;
mod run;

use std::sync::Arc;

use wasmux_core::{
    Artifact, Capabilities, Descriptor, Engine, EngineInfo, EngineOptions, Error, Precompile,
    Precompiler, Result, Support, WasmBinary,
};
use wasmux_guard::{
    GUARDED_OPTIONS, GuardedModule, GuardedSettings, Guards, InitialSize, prepare_validated,
    rewrite_version,
};

use crate::ffi::{AstModule, Config, Execution};

/// The interpreter's name, as used by `--engine` and `run.oci.handler`.
pub const NAME: &str = INTERPRETER.name;
/// The AOT engine's name.
pub const AOT_NAME: &str = AOT.name;

/// The WasmEdge release this backend is built and tested against (Debian's 0.14.1).
const VERSION: &str = "0.14";

const CAPABILITIES: Capabilities = Capabilities {
    components: Support::Unsupported(
        "WasmEdge 0.14's C API runs core modules only; run components on wasmtime",
    ),
    memory_limit: Support::Supported,
    interrupt: Support::Supported,
    serve_http: Support::Unsupported("it runs no components, and wasi:http proxies are components"),
};

/// WasmEdge's interpreter: no compile step, so the fastest start.
pub const INTERPRETER: Descriptor = Descriptor {
    name: "wasmedge",
    version: VERSION,
    capabilities: CAPABILITIES,
    options: GUARDED_OPTIONS,
};

/// WasmEdge with its LLVM AOT compiler: a slow compile at load, then native speed.
pub const AOT: Descriptor = Descriptor {
    name: "wasmedge-aot",
    version: VERSION,
    capabilities: CAPABILITIES,
    options: GUARDED_OPTIONS,
};

/// Why the interpreter has nothing for the precompile cache.
const INTERPRETED: &str =
    "the interpreter runs the module as loaded; use wasmedge-aot for native code";

pub use wasmux_guard::MAX_DEPTH;

/// WasmEdge, interpreted or compiled ahead of time.
#[derive(Debug, Clone)]
pub struct WasmEdgeEngine {
    execution: Execution,
    settings: GuardedSettings,
}

impl WasmEdgeEngine {
    /// The interpreter. Fails if the linked libwasmedge is not a 0.14 release.
    pub fn new() -> Result<Self> {
        Self::with_options(&EngineOptions::default())
    }

    /// The AOT compiler.
    pub fn aot() -> Result<Self> {
        Self::aot_with_options(&EngineOptions::default())
    }

    /// The interpreter with `options` (`stack_size`: the run thread's stack).
    pub fn with_options(options: &EngineOptions) -> Result<Self> {
        Self::with(Execution::Interpreter, options)
    }

    /// The AOT compiler with `options`.
    pub fn aot_with_options(options: &EngineOptions) -> Result<Self> {
        Self::with(Execution::Aot, options)
    }

    fn with(execution: Execution, options: &EngineOptions) -> Result<Self> {
        let name = match execution {
            Execution::Interpreter => NAME,
            Execution::Aot => AOT_NAME,
        };
        let settings = GuardedSettings::from_options(options);
        let version = ffi::library_version();
        if !version.starts_with("0.14.") {
            return Err(Error::Unsupported {
                engine: name,
                feature: "this libwasmedge",
                reason: "wasmux's WasmEdge backend is built for WasmEdge 0.14",
            });
        }
        ffi::silence_logging();
        Ok(WasmEdgeEngine {
            execution,
            settings,
        })
    }
}

impl EngineInfo for WasmEdgeEngine {
    fn descriptor(&self) -> &'static Descriptor {
        match self.execution {
            Execution::Interpreter => &INTERPRETER,
            Execution::Aot => &AOT,
        }
    }
}

/// A validated, instrumented module, parsed (and for AOT compiled) once and
/// instantiated afresh by each run.
pub type WasmEdgeModule = GuardedModule<WasmEdgeCode>;

/// What every module is instrumented with: the depth guard (see the module docs on
/// call depth).
const GUARDS: Guards = Guards {
    max_depth: Some(MAX_DEPTH),
};

/// WasmEdge's part of a loaded module: its configuration and parsed (or AOT) module.
pub struct WasmEdgeCode {
    config: Arc<Config>,
    ast: Arc<AstModule>,
    descriptor: &'static Descriptor,
}

impl WasmEdgeEngine {
    /// Validates, rewrites and (for AOT) compiles: the module, and for AOT the
    /// shared library holding its native code.
    fn load_native(&self, wasm: &WasmBinary) -> Result<(WasmEdgeModule, Option<Vec<u8>>)> {
        let descriptor = self.descriptor();
        let config = self.config()?;
        // WasmEdge's own validator, on the module as given, so errors name its code;
        // interpreted, so that nothing an image ships in a `wasmedge` section of its
        // own is ever loaded as native code.
        let validator =
            Config::new(Execution::Interpreter).map_err(|e| Error::engine(self.name(), e))?;
        drop(validator.load(&wasm.bytes).map_err(|e| invalid(wasm, e))?);
        let instrumented = prepare_validated(wasm, descriptor.name, GUARDS)?;
        let (ast, native) = match self.execution {
            Execution::Interpreter => (config.load(&instrumented.bytes), None),
            Execution::Aot => {
                let _span = tracing::debug_span!("aot-compile", engine = descriptor.name).entered();
                let native = compile(&config, &instrumented.bytes).map_err(|e| invalid(wasm, e))?;
                (config.load_library(&native), Some(native))
            }
        };
        let ast = ast.map_err(|e| invalid(wasm, e))?;
        let module = self.module(config, ast, instrumented.initial, wasm);
        Ok((module, native))
    }

    fn config(&self) -> Result<Config> {
        // WasmEdge's own failure, not an I/O one.
        Config::new(self.execution).map_err(|message| Error::engine(self.name(), message))
    }

    fn module(
        &self,
        config: Config,
        ast: AstModule,
        initial: InitialSize,
        wasm: &WasmBinary,
    ) -> WasmEdgeModule {
        let code = WasmEdgeCode {
            config: Arc::new(config),
            ast: Arc::new(ast),
            descriptor: self.descriptor(),
        };
        GuardedModule::new(code, wasm, initial, GUARDS, self.settings)
    }
}

fn invalid(wasm: &WasmBinary, message: String) -> Error {
    Error::invalid_module(&wasm.origin, message)
}

impl Engine for WasmEdgeEngine {
    type Module = WasmEdgeModule;

    fn load_module(&self, wasm: &WasmBinary) -> Result<WasmEdgeModule> {
        Ok(self.load_native(wasm)?.0)
    }

    fn precompiler(&self) -> Precompiler<'_, WasmEdgeModule> {
        match self.execution {
            Execution::Aot => Precompiler::Available(self),
            Execution::Interpreter => Precompiler::Unavailable(INTERPRETED),
        }
    }
}

/// Only reached through [`Engine::precompiler`], so only for the AOT engine.
impl Precompile<WasmEdgeModule> for WasmEdgeEngine {
    /// The library's exact version, the compile options and the rewrite's version
    /// (the native code is compiled from the rewritten module).
    fn fingerprint(&self) -> String {
        format!(
            "libwasmedge {} O2 shared-library rewrite {} depth {MAX_DEPTH}",
            ffi::library_version(),
            rewrite_version()
        )
    }

    /// The artifact: what the module holds once instantiated (16 bytes,
    /// [`InitialSize::to_bytes`]), then the shared library of WasmEdge's native code.
    fn compile_for_cache(&self, wasm: &WasmBinary) -> Result<(WasmEdgeModule, Vec<u8>)> {
        let (module, native) = self.load_native(wasm)?;
        let native = native.ok_or_else(|| Error::engine(self.name(), INTERPRETED))?;
        let mut artifact = module.initial().to_bytes().to_vec();
        artifact.extend_from_slice(&native);
        Ok((module, artifact))
    }

    fn load_precompiled(&self, wasm: &WasmBinary, artifact: &Artifact) -> Result<WasmEdgeModule> {
        if self.execution != Execution::Aot {
            return Err(Error::engine(self.name(), INTERPRETED));
        }
        let engine_error = |message: String| Error::engine(self.name(), message);
        let (initial, native) = artifact
            .bytes()
            .split_first_chunk::<16>()
            .ok_or_else(|| engine_error("precompiled artifact too short".into()))?;
        let config = self.config()?;
        // The artifact's hash was verified by the cache: it is what compile_for_cache
        // produced for these module bytes on this configuration.
        let ast = config.load_library(native).map_err(engine_error)?;
        Ok(self.module(config, ast, InitialSize::from_bytes(*initial), wasm))
    }
}

/// Compiles to a private temporary file and reads the shared library back.
fn compile(config: &Config, wasm: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a directory for AOT output: {e}"))?;
    let output = dir.path().join("module.so");
    config.compile(wasm, &output)?;
    std::fs::read(&output).map_err(|e| format!("reading the AOT output: {e}"))
}

#[cfg(test)]
mod tests;
