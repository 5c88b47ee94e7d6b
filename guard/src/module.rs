//! The one module type of the guarded engines (wasm3, WAMR, WasmEdge). Every run has the
//! same shape: a thread of its own, the guarded host (WASI and the guards' answers), the
//! engine's instantiate-and-call, one outcome. A backend supplies only its part, as
//! [`GuardedCode`].

use wasmparser::{ExternalKind, Parser, Payload};
use wasmux_engine_api::{
    Descriptor, EngineOptions, Module, RawRun, Result, RunControl, RunSpec, WasmBinary,
};

use crate::host::{Ended, GuardedHost};
use crate::instrument::Guards;
use crate::run::{Prepared, run_guarded};
use crate::thread::on_own_thread;

/// What a guarded engine keeps of a loaded module, and its part of each run.
pub trait GuardedCode: Send + Sync + 'static {
    /// The engine's descriptor (one backend may have several, as WasmEdge's two modes).
    fn descriptor(&self) -> &'static Descriptor;

    /// The run thread's default native stack, in bytes.
    fn native_stack(&self) -> usize;

    /// On the run thread: instantiates the module for this run with `host` answering its
    /// imports, then calls `calls` in order through [`call_in_order`]. A module that
    /// cannot be instantiated is [`instantiate_failed`](crate::instantiate_failed), an
    /// entry that cannot be called [`entry_failed`](crate::entry_failed).
    fn instantiate_and_call(
        &self,
        host: &mut GuardedHost<'_>,
        calls: &[&str],
        module: Prepared<'_>,
    ) -> Result<Ended>;
}

/// A loaded module of a guarded engine: the backend's code plus what every run needs.
pub struct GuardedModule<C> {
    code: C,
    origin: String,
    initial_memory: u64,
    max_depth: Option<u32>,
    /// The module exports `_initialize` (a reactor): it runs before a custom entry.
    initializes: bool,
    /// The run thread's stack, when the engine's options size it.
    native_stack: Option<usize>,
}

/// What a guarded engine takes from [`EngineOptions`]: the run thread's stack size. No
/// guarded engine has an instance pool, so `pooling` is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedSettings {
    native_stack: Option<usize>,
}

impl GuardedSettings {
    /// The settings `options` ask of the guarded engine `engine`.
    pub fn from_options(engine: &'static str, options: &EngineOptions) -> Result<Self> {
        options.refuse_pooling(engine)?;
        Ok(GuardedSettings {
            native_stack: options.stack_size,
        })
    }
}

impl<C: GuardedCode> GuardedModule<C> {
    /// `wasm` is the module as given, `initial_memory` its memory 0's initial size,
    /// `guards` what it was instrumented with, `settings` the engine's.
    pub fn new(
        code: C,
        wasm: &WasmBinary,
        initial_memory: u64,
        guards: Guards,
        settings: GuardedSettings,
    ) -> Self {
        GuardedModule {
            code,
            origin: wasm.origin.clone(),
            initial_memory,
            max_depth: guards.max_depth,
            initializes: exports_function(&wasm.bytes, "_initialize"),
            native_stack: settings.native_stack,
        }
    }

    /// Memory 0's initial size in bytes, for a backend that stores it beside a
    /// precompiled artifact (the limit is checked against it before each run).
    pub fn initial_memory(&self) -> u64 {
        self.initial_memory
    }
}

impl<C: GuardedCode> Module for GuardedModule<C> {
    fn descriptor(&self) -> &'static Descriptor {
        self.code.descriptor()
    }

    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let engine = self.code.descriptor().name;
        let prepared = Prepared {
            engine,
            origin: &self.origin,
            initial_memory: self.initial_memory,
            max_depth: self.max_depth,
        };
        // A reactor is initialised before a custom entry, as wasmtime does; a command's
        // `_start` initialises itself.
        let initialize = self.initializes && spec.entry.is_some();
        let stack = self
            .native_stack
            .unwrap_or_else(|| self.code.native_stack());
        on_own_thread(engine, stack, || {
            run_guarded(prepared, spec, control, |host, entry| {
                let calls: &[&str] = if initialize {
                    &["_initialize", entry]
                } else {
                    &[entry]
                };
                self.code.instantiate_and_call(host, calls, prepared)
            })
        })
    }
}

/// Calls each of `calls` through `call`, stopping at the first that does not return.
pub fn call_in_order(calls: &[&str], mut call: impl FnMut(&str) -> Result<Ended>) -> Result<Ended> {
    for name in calls {
        let ended = call(name)?;
        if !matches!(ended, Ended::Returned) {
            return Ok(ended);
        }
    }
    Ok(Ended::Returned)
}

/// Whether the (valid) module exports a function called `name`.
fn exports_function(bytes: &[u8], name: &str) -> bool {
    Parser::new(0)
        .parse_all(bytes)
        .any(|payload| match payload {
            Ok(Payload::ExportSection(exports)) => exports
                .into_iter()
                .flatten()
                .any(|e| e.name == name && e.kind == ExternalKind::Func),
            _ => false,
        })
}
