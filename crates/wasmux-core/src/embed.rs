//! What embedders call: [`DynEngine`] to load, [`LoadedModule`] to run. Both are sealed
//! wrappers over the backend hooks ([`Engine`], [`Module`]), so the checks, the cache,
//! the deadline and the exit contract are applied here once, for every backend, and no
//! backend can skip or repeat them.

use std::io::Write;

use tracing::{debug_span, warn};

use crate::artifact::{ArtifactKey, ArtifactStore};
use crate::control::RunControl;
use crate::engine::{Capability, Engine, EngineInfo, Module, Precompiler, Support};
use crate::error::{Error, Result};
use crate::load::{CacheEvent, fill_cache, load_cached};
use crate::spec::{RunSpec, StdioStream};
use crate::status::ExitStatus;
use crate::wasm::WasmBinary;

mod sealed {
    /// Implemented for every [`Engine`](crate::Engine) and nothing else.
    pub trait Sealed {}
    impl<E: crate::Engine> Sealed for E {}
}

/// An engine as embedders use it, usable behind `dyn` when the engine is chosen at run
/// time. Every [`Engine`] is one; nothing else can be.
pub trait DynEngine: EngineInfo + sealed::Sealed {
    /// Whether this engine saves compiled code in the precompile cache, and if not, why.
    fn precompile(&self) -> Support;

    /// Whether this engine can do `capability`, and if not, why.
    fn support(&self, capability: Capability) -> Support {
        let caps = self.capabilities();
        match capability {
            Capability::Components => caps.components,
            Capability::MemoryLimit => caps.memory_limit,
            Capability::Interrupt => caps.interrupt,
            Capability::Precompile => self.precompile(),
            Capability::ServeHttp => caps.serve_http,
        }
    }

    /// Validates and compiles: an invalid module is an error, never a panic; a
    /// component on a core-only engine is [`Unsupported`](crate::Error::Unsupported).
    fn load(&self, wasm: &WasmBinary) -> Result<LoadedModule> {
        Ok(self.load_cached(wasm, None)?.0)
    }

    /// [`load`](Self::load) through an artifact store (the precompile cache) when one is given: a verified
    /// entry skips the compiler, a miss compiles and stores. A cache fault never fails
    /// the load; the returned event says what the cache did.
    fn load_cached(
        &self,
        wasm: &WasmBinary,
        cache: Option<&dyn ArtifactStore>,
    ) -> Result<(LoadedModule, CacheEvent)>;

    /// The key under which `cache` keeps (or would keep) this engine's compiled code for
    /// `wasm`; `None` for an engine without precompiled code. For a caller that hands
    /// one entry on (a runtime giving a container the entry its own load filled).
    fn artifact_key(&self, wasm: &WasmBinary, cache: &dyn ArtifactStore) -> Option<ArtifactKey>;

    /// Compiles `wasm`'s optimized code into `cache`, after a load that returned
    /// [`CacheEvent::Deferred`] (or ahead of any run): `Stored`, or `NotStored` when the
    /// entry cannot be written; `Uncacheable` for an engine without precompiled code.
    fn fill_cache(&self, wasm: &WasmBinary, cache: &dyn ArtifactStore) -> Result<CacheEvent>;
}

impl<E: Engine> DynEngine for E {
    fn precompile(&self) -> Support {
        self.precompiler().support()
    }

    fn artifact_key(&self, wasm: &WasmBinary, cache: &dyn ArtifactStore) -> Option<ArtifactKey> {
        match self.precompiler() {
            Precompiler::Available(precompiler) => {
                Some(cache.key(self.descriptor(), &precompiler.fingerprint(), &wasm.bytes))
            }
            Precompiler::Unavailable(_) => None,
        }
    }

    fn fill_cache(&self, wasm: &WasmBinary, cache: &dyn ArtifactStore) -> Result<CacheEvent> {
        let _span =
            debug_span!("fill_cache", engine = self.name(), module = %wasm.origin).entered();
        fill_cache(self, wasm, cache)
    }

    fn load_cached(
        &self,
        wasm: &WasmBinary,
        cache: Option<&dyn ArtifactStore>,
    ) -> Result<(LoadedModule, CacheEvent)> {
        let _span = debug_span!("load", engine = self.name(), module = %wasm.origin).entered();
        let (module, event) = load_cached(self, wasm, cache)?;
        Ok((
            LoadedModule {
                module: Box::new(module),
            },
            event,
        ))
    }
}

/// A validated, compiled module, runnable any number of times (also at once, from
/// several threads) with different specs.
pub struct LoadedModule {
    module: Box<dyn Module>,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("engine", &self.engine())
            .finish_non_exhaustive()
    }
}

impl LoadedModule {
    /// The name of the engine that loaded it.
    pub fn engine(&self) -> &'static str {
        self.module.descriptor().name
    }

    /// Runs the module against `spec` to one typed [`ExitStatus`]. The spec is checked
    /// against the engine's capabilities, the deadline in `spec.limits` is armed, and a
    /// guest that did not exit normally is reported on its stderr stream and logged.
    pub fn run(&self, spec: RunSpec, control: &RunControl) -> Result<ExitStatus> {
        let descriptor = self.module.descriptor();
        let engine = descriptor.name;
        let _span = debug_span!("run", engine, module = %spec.wasm.origin).entered();
        descriptor.capabilities.check(engine, &spec)?;
        let stderr = spec.stdio.stderr.try_clone()?;
        let _deadline = spec.limits.timeout.map(|t| control.arm_deadline(t));
        let _budget = spec
            .limits
            .cpu_time
            .map(|budget| {
                control
                    .arm_cpu_budget(budget)
                    .ok_or_else(|| Error::Unsupported {
                        engine,
                        feature: "a CPU time budget",
                        reason: "this process's CPU clock cannot be read",
                    })
            })
            .transpose()?;
        let raw = self.module.execute(spec, control)?;
        let status = raw.outcome.classify(control.killed(), raw.memory_denied);
        report(&status, stderr);
        Ok(status)
    }
}

impl LoadedModule {
    /// Whether this is a `wasi:http` proxy component, which [`serve`](Self::serve)
    /// runs (by its content: it exports `wasi:http/incoming-handler`).
    pub fn serves_http(&self) -> bool {
        self.module.serves_http()
    }

    /// Whether [`serve`](Self::serve) takes `spec`: a caller checks before it listens.
    pub fn check_servable(&self, spec: &RunSpec) -> Result<()> {
        let descriptor = self.module.descriptor();
        descriptor.capabilities.check(descriptor.name, spec)?;
        if spec.limits.cpu_time.is_some() {
            return Err(Error::Unsupported {
                engine: descriptor.name,
                feature: "a CPU time budget for a served component",
                reason: "its requests share one process; each request's deadline (the \
                         timeout) bounds it instead",
            });
        }
        Ok(())
    }

    /// Serves HTTP on `listener` until `control` is killed: each request on a fresh
    /// instance with `spec`'s arguments, environment, preopens, stdio and memory limit,
    /// and `spec.limits.timeout` as each request's deadline (a service has no end to
    /// bound); a request whose instance traps is answered 500, one past its deadline
    /// 504, and the server goes on. Ends with the kill's status (143 for SIGTERM), after
    /// requests in flight finish.
    pub fn serve(
        &self,
        spec: RunSpec,
        listener: std::net::TcpListener,
        control: &RunControl,
    ) -> Result<ExitStatus> {
        let descriptor = self.module.descriptor();
        let _span =
            debug_span!("serve", engine = descriptor.name, module = %spec.wasm.origin).entered();
        self.check_servable(&spec)?;
        let raw = self.module.serve(spec, listener, control)?;
        Ok(raw.outcome.classify(control.killed(), raw.memory_denied))
    }
}

/// Tells people why a guest died: on its stderr stream (the host's when inherited),
/// never on its stdout, and as a tracing event.
fn report(status: &ExitStatus, stderr: StdioStream) {
    if matches!(status, ExitStatus::Exited(_)) {
        return;
    }
    warn!(%status, "guest did not exit normally");
    let line = format!("wasmux: {status}\n");
    let written = match stderr {
        StdioStream::Inherit => std::io::stderr().write_all(line.as_bytes()),
        StdioStream::File(f) => (&*f).write_all(line.as_bytes()),
        StdioStream::Null => Ok(()),
    };
    if let Err(e) = written {
        warn!(error = %e, "could not write the exit report to the guest's stderr");
    }
}

/// Loads and runs in one call: the common case for a shim that runs a bundle once.
pub fn run_once(engine: &dyn DynEngine, spec: RunSpec, control: &RunControl) -> Result<ExitStatus> {
    engine.load(&spec.wasm)?.run(spec, control)
}
