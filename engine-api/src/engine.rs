//! The `Engine` trait every backend implements, and the run path they all share.

use std::fmt;
use std::io::Write;

use tracing::{debug_span, warn};

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
}

impl Capabilities {
    /// The capabilities as `(name, support)` pairs, for listings.
    pub fn entries(&self) -> [(&'static str, Support); 3] {
        [
            ("components", self.components),
            ("memory-limit", self.memory_limit),
            ("interrupt", self.interrupt),
        ]
    }

    /// Refuses a spec that needs something this engine cannot do, naming it.
    pub fn check(&self, engine: &'static str, spec: &RunSpec) -> Result<()> {
        let mut needs = Vec::new();
        if spec.wasm.kind == WasmKind::Component {
            needs.push(("components", self.components));
        }
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

/// Name, version and capabilities: what every engine says about itself.
pub trait EngineInfo: Send + Sync {
    /// Short lowercase name, as used by `--engine` and `run.oci.handler`.
    fn name(&self) -> &'static str;
    /// The engine's own version (not wasmux's).
    fn version(&self) -> &'static str;
    /// What this engine can do.
    fn capabilities(&self) -> Capabilities;
}

/// A Wasm engine. Backends implement this; use it generically (`E: Engine`) for static
/// dispatch, or through [`DynEngine`] when the engine is chosen at run time.
pub trait Engine: EngineInfo {
    /// The engine's loaded (validated, compiled, linked) form of a module or component.
    type Module: Module + 'static;

    /// Validates and compiles; invalid input is an [`Error::InvalidModule`], never a panic.
    fn load(&self, wasm: &WasmBinary) -> Result<Self::Module>;
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
    /// The engine's name, for errors and spans.
    fn engine_name(&self) -> &'static str;

    /// The engine's capabilities, checked against each spec before running.
    fn capabilities(&self) -> Capabilities;

    /// Backend hook: run once, honouring `control` (it may already be killed).
    /// Call [`run`](Self::run) instead: it adds the deadline, the checks and the contract.
    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun>;

    /// Runs the module against `spec` to one typed [`ExitStatus`]. The deadline in
    /// `spec.limits` is armed here; a trap's message is written to the guest's stderr
    /// stream and logged.
    fn run(&self, spec: RunSpec, control: &RunControl) -> Result<ExitStatus> {
        let engine = self.engine_name();
        let _span = debug_span!("run", engine, module = %spec.wasm.origin).entered();
        self.capabilities().check(engine, &spec)?;
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
    fn load_dyn(&self, wasm: &WasmBinary) -> Result<Box<dyn Module>>;
}

impl<E: Engine> DynEngine for E {
    fn load_dyn(&self, wasm: &WasmBinary) -> Result<Box<dyn Module>> {
        let _span = debug_span!("load", engine = self.name(), module = %wasm.origin).entered();
        Ok(Box::new(self.load(wasm)?))
    }
}

/// Loads and runs in one call: the common case for a shim that runs a bundle once.
pub fn run_once(engine: &dyn DynEngine, spec: RunSpec, control: &RunControl) -> Result<ExitStatus> {
    let module = engine.load_dyn(&spec.wasm)?;
    module.run(spec, control)
}
