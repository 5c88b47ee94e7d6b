//! The `Engine` trait every backend implements, and the run path they all share.

use std::fmt;
use std::io::Write;

use tracing::{debug_span, warn};

use crate::cache::{Artifact, CacheEvent, PrecompileCache, load_cached};
use crate::control::RunControl;
use crate::detect::{WasmBinary, WasmKind};
use crate::error::{Error, Result};
use crate::spec::{RunSpec, StdioStream};
use crate::status::{ExitStatus, RawOutcome};

/// Whether an engine provides a feature, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The engine provides it.
    Supported,
    /// The engine cannot provide it, for this reason (shown to users).
    Unsupported(&'static str),
}

impl Support {
    /// True when supported.
    pub fn is_supported(self) -> bool {
        matches!(self, Support::Supported)
    }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Support::Supported => f.write_str("yes"),
            Support::Unsupported(reason) => write!(f, "unsupported: {reason}"),
        }
    }
}

/// What an engine can do, declared up front so callers (and the conformance suite)
/// know before running instead of finding out from a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Components through `wasi:cli/run`.
    pub components: Support,
    /// A cap on linear memory enforced inside the engine.
    pub memory_limit: Support,
    /// Stopping a running guest (kill, deadline).
    pub interrupt: Support,
    /// Saving compiled native code for the precompile cache.
    pub precompile: Support,
}

impl Capabilities {
    /// The capabilities as `(name, support)` pairs, for listings.
    pub fn entries(&self) -> [(&'static str, Support); 4] {
        [
            ("components", self.components),
            ("memory-limit", self.memory_limit),
            ("interrupt", self.interrupt),
            ("precompile", self.precompile),
        ]
    }

    /// Refuses a kind of binary this engine cannot load, before it tries to compile it
    /// (so a component on a core-only engine is `Unsupported`, not "invalid").
    pub fn check_kind(&self, engine: &'static str, kind: WasmKind) -> Result<()> {
        match (kind, self.components) {
            (WasmKind::Component, Support::Unsupported(reason)) => Err(Error::Unsupported {
                engine,
                feature: "components",
                reason,
            }),
            _ => Ok(()),
        }
    }

    /// Refuses a spec that needs something this engine cannot do, naming it.
    pub fn check(&self, engine: &'static str, spec: &RunSpec) -> Result<()> {
        self.check_kind(engine, spec.wasm.kind)?;
        let mut needs = Vec::new();
        if spec.limits.memory_bytes.is_some() {
            needs.push(("a memory limit", self.memory_limit));
        }
        if spec.limits.timeout.is_some() {
            needs.push(("a deadline", self.interrupt));
        }
        for (feature, support) in needs {
            if let Support::Unsupported(reason) = support {
                return Err(Error::Unsupported {
                    engine,
                    feature,
                    reason,
                });
            }
        }
        Ok(())
    }
}

/// Name, version and capabilities: what an engine says about itself, declared once as a
/// constant by each backend and shared by its engine and its modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Short lowercase name, as used by `--engine` and `run.oci.handler`.
    pub name: &'static str,
    /// The engine's own version (not wasmux's).
    pub version: &'static str,
    /// What this engine can do.
    pub capabilities: Capabilities,
}

/// What every engine says about itself, through its [`Descriptor`].
pub trait EngineInfo: Send + Sync {
    /// The backend's constant descriptor.
    fn descriptor(&self) -> &'static Descriptor;

    /// Short lowercase name, as used by `--engine` and `run.oci.handler`.
    fn name(&self) -> &'static str {
        self.descriptor().name
    }

    /// The engine's own version (not wasmux's).
    fn version(&self) -> &'static str {
        self.descriptor().version
    }

    /// What this engine can do.
    fn capabilities(&self) -> Capabilities {
        self.descriptor().capabilities
    }
}

/// A Wasm engine. Backends implement this; use it generically (`E: Engine`) for static
/// dispatch, or through [`DynEngine`] when the engine is chosen at run time.
pub trait Engine: EngineInfo {
    /// The engine's loaded (validated, compiled, linked) form of a module or component.
    type Module: Module + 'static;

    /// Validates and compiles; invalid input is an [`Error::InvalidModule`], never a panic.
    fn load(&self, wasm: &WasmBinary) -> Result<Self::Module>;

    /// Everything besides name, version and module bytes that decides whether this
    /// engine's compiled code may be reused (its configuration): part of the cache key.
    fn precompile_fingerprint(&self) -> String {
        String::new()
    }

    /// [`load`](Self::load), also returning the compiled form to store in the cache.
    /// Engines whose `precompile` capability is supported override it.
    fn compile_for_cache(&self, wasm: &WasmBinary) -> Result<(Self::Module, Vec<u8>)> {
        let _ = wasm;
        Err(self.precompile_unsupported())
    }

    /// Loads a module from what [`compile_for_cache`](Self::compile_for_cache) stored.
    /// Only the cache makes an [`Artifact`], after verifying the hash it wrote with it.
    fn load_precompiled(&self, wasm: &WasmBinary, artifact: &Artifact) -> Result<Self::Module> {
        let _ = (wasm, artifact);
        Err(self.precompile_unsupported())
    }

    /// The error of the two precompile hooks on an engine that has none.
    fn precompile_unsupported(&self) -> Error {
        let reason = match self.capabilities().precompile {
            Support::Unsupported(reason) => reason,
            Support::Supported => "this backend does not implement it",
        };
        Error::Unsupported {
            engine: self.name(),
            feature: "precompile",
            reason,
        }
    }
}

/// What a backend observed: the raw outcome and whether a memory grow was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRun {
    /// How the guest stopped, before the contract is applied.
    pub outcome: RawOutcome,
    /// The memory limit refused at least one grow during the run.
    pub memory_denied: bool,
}

/// A loaded module, runnable any number of times with different specs.
pub trait Module: Send + Sync {
    /// The engine's descriptor: its name for errors and spans, its capabilities
    /// checked against each spec before running.
    fn descriptor(&self) -> &'static Descriptor;

    /// Backend hook: run once, honouring `control` (it may already be killed).
    /// Call [`run`](Self::run) instead: it adds the deadline, the checks and the contract.
    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun>;

    /// Runs the module against `spec` to one typed [`ExitStatus`]. The deadline in
    /// `spec.limits` is armed here; a trap's message is written to the guest's stderr
    /// stream and logged.
    fn run(&self, spec: RunSpec, control: &RunControl) -> Result<ExitStatus> {
        let descriptor = self.descriptor();
        let engine = descriptor.name;
        let _span = debug_span!("run", engine, module = %spec.wasm.origin).entered();
        descriptor.capabilities.check(engine, &spec)?;
        let stderr = spec.stdio.stderr.try_clone()?;
        let _deadline = spec.limits.timeout.map(|t| control.arm_deadline(t));
        let raw = self.execute(spec, control)?;
        let status = raw.outcome.classify(control.killed(), raw.memory_denied);
        report(&status, stderr);
        Ok(status)
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
        StdioStream::File(mut f) => f.write_all(line.as_bytes()),
        StdioStream::Null => Ok(()),
    };
    if let Err(e) = written {
        warn!(error = %e, "could not write the exit report to the guest's stderr");
    }
}

/// An engine behind `dyn`, for choosing one by name at run time.
pub trait DynEngine: EngineInfo {
    /// [`Engine::load`], boxed.
    fn load_dyn(&self, wasm: &WasmBinary) -> Result<Box<dyn Module>> {
        Ok(self.load_cached_dyn(wasm, None)?.0)
    }

    /// [`load_cached`], boxed: through the precompile cache when one is given.
    fn load_cached_dyn(
        &self,
        wasm: &WasmBinary,
        cache: Option<&PrecompileCache>,
    ) -> Result<(Box<dyn Module>, CacheEvent)>;
}

impl<E: Engine> DynEngine for E {
    fn load_cached_dyn(
        &self,
        wasm: &WasmBinary,
        cache: Option<&PrecompileCache>,
    ) -> Result<(Box<dyn Module>, CacheEvent)> {
        let _span = debug_span!("load", engine = self.name(), module = %wasm.origin).entered();
        let (module, event) = load_cached(self, wasm, cache)?;
        Ok((Box::new(module), event))
    }
}

/// Loads and runs in one call: the common case for a shim that runs a bundle once.
pub fn run_once(engine: &dyn DynEngine, spec: RunSpec, control: &RunControl) -> Result<ExitStatus> {
    let module = engine.load_dyn(&spec.wasm)?;
    module.run(spec, control)
}
