//! What a backend implements: [`Engine`] (load), [`Module`] (execute once) and, for
//! engines that compile to native code, [`Precompile`]. Embedders never call these hooks:
//! they go through [`DynEngine`](crate::DynEngine) and [`LoadedModule`](crate::LoadedModule),
//! which apply the kind and capability checks, the cache, the deadline and the exit
//! contract exactly once, whatever the backend.

use std::fmt;

use crate::artifact::Artifact;
use crate::control::RunControl;
use crate::error::{Error, Result};
use crate::options::OptionSupport;
use crate::spec::RunSpec;
use crate::status::RawOutcome;
use crate::wasm::{WasmBinary, WasmKind};

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

/// One thing an engine may or may not be able to do: the single list `wasmux engines`,
/// the checks and the conformance suite all name capabilities from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Components through `wasi:cli/run`.
    Components,
    /// A cap on memory (memories and tables) enforced inside the engine.
    MemoryLimit,
    /// Stopping a running guest (kill, deadline).
    Interrupt,
    /// Saving compiled code in the precompile cache.
    Precompile,
    /// Serving `wasi:http` proxy components (a fresh instance per request).
    ServeHttp,
}

impl Capability {
    /// Every capability, in listing order.
    pub const ALL: [Capability; 5] = [
        Capability::Components,
        Capability::MemoryLimit,
        Capability::Interrupt,
        Capability::Precompile,
        Capability::ServeHttp,
    ];

    /// Its name in listings and messages.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Components => "components",
            Capability::MemoryLimit => "memory-limit",
            Capability::Interrupt => "interrupt",
            Capability::Precompile => "precompile",
            Capability::ServeHttp => "serve-http",
        }
    }
}

/// What an engine can do at run time, declared up front so callers (and the conformance
/// suite) know before running instead of finding out from a failure. (Whether it can
/// precompile is not declared: it follows from [`Engine::precompiler`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Components through `wasi:cli/run`.
    pub components: Support,
    /// A cap on linear memory enforced inside the engine.
    pub memory_limit: Support,
    /// Stopping a running guest (kill, deadline).
    pub interrupt: Support,
    /// Serving `wasi:http` proxy components.
    pub serve_http: Support,
}

impl Capabilities {
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
    /// Which engine options it takes; the registry refuses the others.
    pub options: OptionSupport,
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

/// A Wasm engine, as a backend implements it. Embedders use it through
/// [`DynEngine`](crate::DynEngine), which every `Engine` is.
pub trait Engine: EngineInfo {
    /// The engine's loaded (validated, compiled, linked) form of a module or component.
    type Module: Module + 'static;

    /// Hook: validates and compiles. Invalid input is an [`Error::InvalidModule`], never
    /// a panic. The binary's kind has already been checked against the capabilities.
    fn load_module(&self, wasm: &WasmBinary) -> Result<Self::Module>;

    /// Hook: how this engine saves compiled code for the precompile cache, or why it
    /// cannot. Required, so a backend states it; the `precompile` capability embedders
    /// see is this answer.
    fn precompiler(&self) -> Precompiler<'_, Self::Module>;
}

/// An engine's answer to "can you precompile?".
pub enum Precompiler<'a, M> {
    /// It can, through these hooks.
    Available(&'a dyn Precompile<M>),
    /// It cannot, for this reason (shown to users).
    Unavailable(&'static str),
}

impl<M> Precompiler<'_, M> {
    /// The answer as a capability.
    pub fn support(&self) -> Support {
        match self {
            Precompiler::Available(_) => Support::Supported,
            Precompiler::Unavailable(reason) => Support::Unsupported(reason),
        }
    }
}

/// Saving and reloading compiled native code: implemented by backends that compile
/// (wasmtime, wasmer, WasmEdge AOT), used only by the precompile cache.
pub trait Precompile<M>: Send + Sync {
    /// Everything besides name, version and module bytes that decides whether this
    /// engine's compiled code may be reused (its configuration, its target): part of
    /// the cache key, so it must change whenever reusing the code would be wrong.
    fn fingerprint(&self) -> String;

    /// Compiles, returning the loaded module and the compiled form to store.
    fn compile_for_cache(&self, wasm: &WasmBinary) -> Result<(M, Vec<u8>)>;

    /// Loads a module from what [`compile_for_cache`](Self::compile_for_cache) stored.
    /// Only the cache makes an [`Artifact`], after verifying the hash it wrote with it.
    fn load_precompiled(&self, wasm: &WasmBinary, artifact: &Artifact) -> Result<M>;

    /// A tiered engine's quick load for a cache miss: baseline code that starts sooner
    /// than [`compile_for_cache`](Self::compile_for_cache)'s optimized code, which the
    /// caller then makes for the cache ([`DynEngine::fill_cache`](crate::DynEngine::fill_cache)).
    /// `None` (the default): compile for the cache now.
    fn load_baseline(&self, _wasm: &WasmBinary) -> Option<Result<M>> {
        None
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

/// A loaded module, as a backend implements it. Embedders hold a
/// [`LoadedModule`](crate::LoadedModule), whose `run` wraps [`execute`](Self::execute).
pub trait Module: Send + Sync {
    /// The engine's descriptor: its name for errors and spans, its capabilities
    /// checked against each spec before running.
    fn descriptor(&self) -> &'static Descriptor;

    /// Hook: runs once, honouring `control` (it may already be killed). The spec has
    /// passed the capability checks and the deadline is armed.
    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun>;

    /// Whether this is a `wasi:http` proxy (a component exporting
    /// `wasi:http/incoming-handler`), to be served rather than run. Decided by its
    /// content; `false` for engines that cannot serve.
    fn serves_http(&self) -> bool {
        false
    }

    /// Hook: serves HTTP on `listener`, a fresh instance per request with `spec`'s
    /// limits, until `control` is killed (then requests in flight finish within a
    /// grace period). Only called when [`serves_http`](Self::serves_http).
    fn serve(
        &self,
        _spec: RunSpec,
        _listener: std::net::TcpListener,
        _control: &RunControl,
    ) -> Result<RawRun> {
        let reason = match self.descriptor().capabilities.serve_http {
            Support::Unsupported(reason) => reason,
            Support::Supported => "this module is not a wasi:http proxy",
        };
        Err(Error::Unsupported {
            engine: self.descriptor().name,
            feature: "serving wasi:http",
            reason,
        })
    }
}
