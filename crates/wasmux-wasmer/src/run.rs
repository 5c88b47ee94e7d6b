//! One run: a store with per-run tunables, wasmux's WASI bound to the spec, the kill
//! hook, then the entry call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmer::{Instance, InstantiationError, Store};
use wasmux_core::{Descriptor, Error, Module, RawOutcome, RawRun, Result, RunControl, RunSpec};
use wasmux_wasi_preview1::WasiHost;

use crate::memory::{BudgetTunables, SharedBudget};
use crate::outcome::outcome_of;
use crate::{DESCRIPTOR, NAME, WasmerModule, wasi};

impl WasmerModule {
    fn run_core(&self, mut spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let budget = SharedBudget::new(spec.limits.memory_bytes);
        let mut engine = self.engine.engine.clone();
        {
            use wasmer::sys::NativeEngineExt;
            engine.set_tunables(BudgetTunables::new(budget.clone()));
        }
        let mut store = Store::new(engine);
        // Exactly the spec's argv, environment, preopens and stdio.
        let (env, imports) = wasi::imports(&mut store, WasiHost::new(&mut spec, control)?);
        let instantiated = {
            let _span = tracing::debug_span!("instantiate", engine = NAME).entered();
            Instance::new(&mut store, &self.module, &imports)
        };
        let instance = match instantiated {
            Ok(instance) => instance,
            Err(e) => return instantiate_failure(e, &budget, &spec),
        };
        if let Ok(memory) = instance.exports.get_memory("memory") {
            wasi::attach_memory(&mut store, &env, memory.clone());
        }

        let name = spec.entry.as_deref().unwrap_or("_start");
        let not_runnable = |reason: &str| Error::EntryFunction {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        let entry = match instance.exports.get_function(name) {
            Ok(f) if f.ty(&store).params().is_empty() => f.clone(),
            Ok(_) => return Err(not_runnable("it takes parameters")),
            Err(_) => return Err(not_runnable("no such exported function")),
        };

        let running = Arc::new(AtomicBool::new(true));
        let _hook = control.on_kill(interrupter(&store, running.clone()));
        // A reactor is initialised before a custom entry, as on every engine; a
        // command's `_start` initialises itself.
        let initialize = spec
            .entry
            .as_ref()
            .and_then(|_| instance.exports.get_function("_initialize").ok().cloned());
        let outcome = {
            let _span = tracing::debug_span!("call", engine = NAME, entry = name).entered();
            let initialized = match initialize {
                Some(init) => init.call(&mut store, &[]).map(drop),
                None => Ok(()),
            };
            match initialized.and_then(|()| entry.call(&mut store, &[]).map(drop)) {
                Ok(()) => RawOutcome::Returned,
                Err(e) => outcome_of(&e),
            }
        };
        running.store(false, Ordering::SeqCst);
        Ok(RawRun {
            outcome,
            memory_denied: budget.denied(),
        })
    }
}

/// Stops the guest from another thread. wasmer's host interrupt only lands while the
/// guest executes Wasm code (a signal arriving during a host call is dropped), so it is
/// repeated, with backoff, until the call has returned.
fn interrupter(store: &Store, running: Arc<AtomicBool>) -> impl Fn() + Send + Sync + 'static {
    let interrupter = store.interrupter();
    move || {
        let interrupter = interrupter.clone();
        let running = running.clone();
        let spawned = std::thread::Builder::new()
            .name("wasmux-wasmer-kill".into())
            .spawn(move || {
                let mut pause = Duration::from_millis(1);
                while running.load(Ordering::SeqCst) {
                    interrupter.interrupt();
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the thread that interrupts the guest");
        }
    }
}

/// Instantiation failed: a trap in a start function (`proc_exit` included) or a memory
/// the limit refused is the guest's outcome; anything else is a link problem.
fn instantiate_failure(
    error: InstantiationError,
    budget: &SharedBudget,
    spec: &RunSpec,
) -> Result<RawRun> {
    let memory_denied = budget.denied();
    match error {
        InstantiationError::Start(trap) => Ok(RawRun {
            outcome: outcome_of(&trap),
            memory_denied,
        }),
        other if memory_denied => Ok(RawRun {
            outcome: RawOutcome::Trap(wasmux_core::TrapKind::Other, other.to_string()),
            memory_denied,
        }),
        other => Err(Error::link(&spec.wasm.origin, other)),
    }
}

impl Module for WasmerModule {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        self.run_core(spec, control)
    }
}
