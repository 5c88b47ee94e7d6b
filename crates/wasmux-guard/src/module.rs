//! The one module type of the guarded engines (wasm3, WAMR, WasmEdge). Every run has the
//! same shape: a thread of its own, the guarded host (WASI and the guards' answers), the
//! engine's instantiate-and-call, one outcome. A backend supplies only its part, as
//! [`GuardedCode`].

use wasmparser::{ExternalKind, Parser, Payload};
use wasmux_core::{
    Descriptor, EngineOptions, Error, Module, ONLY_WASMTIME_POOLS, OptionSupport, RawRun, Result,
    RunControl, RunSpec, Support, WasmBinary,
};

use crate::host::{Ended, GuardedHost};
use crate::instrument::{Guards, InitialSize};
use crate::run::{ModuleFacts, entry_failed, instantiate_failed, run_guarded};
use crate::thread::on_own_thread;

/// What a guarded engine keeps of a loaded module, and its part of each run: making an
/// instance on the run thread. The guard does the rest (thread, host, spans, the calls
/// in order, the outcome).
pub trait GuardedCode: Send + Sync + 'static {
    /// One instance of the module, linked to one run's host.
    type Instance<'a, 'h>: GuardedInstance
    where
        Self: 'a,
        'h: 'a;

    /// The run thread's default native stack, in bytes.
    const NATIVE_STACK: usize;

    /// The engine's descriptor (one backend may have several, as WasmEdge's two modes).
    fn descriptor(&self) -> &'static Descriptor;

    /// On the run thread: instantiates the module with `host` answering its imports.
    fn instantiate<'a, 'h>(
        &'a self,
        host: &'a mut GuardedHost<'h>,
    ) -> std::result::Result<Self::Instance<'a, 'h>, NotInstantiated>;
}

/// An instance of a guarded engine, for one run.
pub trait GuardedInstance {
    /// Calls the exported function `entry` and says how it ended; `Err` is an entry
    /// that is missing or cannot be called, with the engine's reason.
    fn call(&mut self, entry: &str) -> std::result::Result<Ended, String>;
}

/// Why there is no instance to call.
#[derive(Debug)]
pub enum NotInstantiated {
    /// The engine cannot instantiate this module: a link error of the run, with the
    /// engine's reason.
    Refused(String),
    /// Instantiating ran the module's start function, and that ended the run.
    Ended(Ended),
    /// The host failed to prepare the run.
    Failed(Error),
}

/// A loaded module of a guarded engine: the backend's code plus what every run needs.
pub struct GuardedModule<C> {
    code: C,
    origin: String,
    initial: InitialSize,
    max_depth: Option<u32>,
    /// The module exports `_initialize` (a reactor): it runs before a custom entry.
    initializes: bool,
    /// The run thread's stack, when the engine's options size it.
    native_stack: Option<usize>,
}

/// What a guarded engine takes from [`EngineOptions`]: the run thread's stack size. No
/// guarded engine has an instance pool or a choice of compiler ([`GUARDED_OPTIONS`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedSettings {
    native_stack: Option<usize>,
}

/// The options every guarded engine declares in its descriptor: `stack-size` only.
pub const GUARDED_OPTIONS: OptionSupport = OptionSupport {
    pooling: Support::Unsupported(ONLY_WASMTIME_POOLS),
    stack_size: Support::Supported,
    tiers: &[],
    tier_refusal: "an interpreter compiles nothing, and WasmEdge's compiler is its own engine (wasmedge-aot)",
    wasm_features: Support::Unsupported(
        "the guarded engines take the proposals wasmux's guard rewrites, at their defaults",
    ),
};

impl GuardedSettings {
    /// The settings `options` ask of a guarded engine (the registry has refused what
    /// [`GUARDED_OPTIONS`] does not take).
    pub fn from_options(options: &EngineOptions) -> Self {
        GuardedSettings {
            native_stack: options.stack_size,
        }
    }
}

impl<C: GuardedCode> GuardedModule<C> {
    /// `wasm` is the module as given, `initial` what it holds once instantiated,
    /// `guards` what it was instrumented with, `settings` the engine's.
    pub fn new(
        code: C,
        wasm: &WasmBinary,
        initial: InitialSize,
        guards: Guards,
        settings: GuardedSettings,
    ) -> Self {
        GuardedModule {
            code,
            origin: wasm.origin.clone(),
            initial,
            max_depth: guards.max_depth,
            initializes: exports_function(&wasm.bytes, "_initialize"),
            native_stack: settings.native_stack,
        }
    }

    /// What the module holds once instantiated, for a backend that stores it beside a
    /// precompiled artifact (the limit is checked against it before each run).
    pub fn initial(&self) -> InitialSize {
        self.initial
    }
}

impl<C: GuardedCode> Module for GuardedModule<C> {
    fn descriptor(&self) -> &'static Descriptor {
        self.code.descriptor()
    }

    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let engine = self.code.descriptor().name;
        let facts = ModuleFacts {
            engine,
            origin: &self.origin,
            initial: self.initial,
            max_depth: self.max_depth,
        };
        // A reactor is initialised before a custom entry, as wasmtime does; a command's
        // `_start` initialises itself.
        let initialize = self.initializes && spec.entry.is_some();
        let stack = self.native_stack.unwrap_or(C::NATIVE_STACK);
        on_own_thread(engine, stack, || {
            run_guarded(facts, spec, control, |host, entry| {
                let calls: &[&str] = if initialize {
                    &["_initialize", entry]
                } else {
                    &[entry]
                };
                self.instantiate_and_call(host, calls, facts)
            })
        })
    }
}

impl<C: GuardedCode> GuardedModule<C> {
    /// On the run thread: one instance, then `calls` in order until one does not return.
    fn instantiate_and_call(
        &self,
        host: &mut GuardedHost<'_>,
        calls: &[&str],
        module: ModuleFacts<'_>,
    ) -> Result<Ended> {
        let engine = module.engine;
        let span = tracing::debug_span!("instantiate", engine).entered();
        let instance = self.code.instantiate(host);
        drop(span);
        let mut instance = match instance {
            Ok(instance) => instance,
            Err(NotInstantiated::Refused(reason)) => {
                return Err(instantiate_failed(module, reason));
            }
            Err(NotInstantiated::Ended(ended)) => return Ok(ended),
            Err(NotInstantiated::Failed(error)) => return Err(error),
        };
        for entry in calls {
            let _span = tracing::debug_span!("call", engine, entry).entered();
            let ended = instance.call(entry).map_err(|e| entry_failed(entry, e))?;
            if !matches!(ended, Ended::Returned) {
                return Ok(ended);
            }
        }
        Ok(Ended::Returned)
    }
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
