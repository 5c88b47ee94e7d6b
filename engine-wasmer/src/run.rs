//! One run: a store with per-run tunables, a WASI environment built from the spec, the
//! kill hook, then the entry call and wasmer-wasix's process cleanup.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmer::{InstantiationError, Store};
use wasmer_wasix::runtime::task_manager::VirtualTaskManager;
use wasmer_wasix::{
    PluggableRuntime, WasiEnvBuilder, WasiFunctionEnv, WasiRuntimeError, WasiThreadError,
};
use wasmux_engine_api::{
    Descriptor, Error, Module, RawOutcome, RawRun, Result, RunControl, RunSpec, TrapKind,
};

use crate::file::SyncFile;
use crate::memory::{BudgetTunables, SharedBudget};
use crate::outcome::outcome_of;
use crate::{DESCRIPTOR, NAME, WasmerModule, fs};

impl WasmerModule {
    /// The WASI environment: exactly the spec's argv, env, preopens and stdio.
    fn wasi_env(&self, spec: &mut RunSpec, engine: wasmer::Engine) -> Result<WasiEnvBuilder> {
        let mut builder = WasiEnvBuilder::new(spec.args.first().cloned().unwrap_or_default());
        builder.add_args(spec.args.iter().skip(1));
        builder.add_envs(spec.env.iter().map(|(k, v)| (k, v)));
        // No `current_dir`: wasmer-wasix would create it in the backing file system.
        // The working directory reaches the guest as the `.` preopen (wasi_preopens).
        let handle = self.engine.runtime.handle().clone();
        fs::install_preopens(&mut builder, &spec.wasi_preopens()?, handle)?;
        let stdio = std::mem::take(&mut spec.stdio);
        builder.set_stdin(Box::new(SyncFile::stdio(
            stdio.stdin,
            false,
            std::io::stdin(),
        )?));
        builder.set_stdout(Box::new(SyncFile::stdio(
            stdio.stdout,
            true,
            std::io::stdout(),
        )?));
        builder.set_stderr(Box::new(SyncFile::stdio(
            stdio.stderr,
            true,
            std::io::stderr(),
        )?));
        let tasks: Arc<dyn VirtualTaskManager> = self.engine.tasks.clone();
        let mut runtime = PluggableRuntime::new(tasks);
        runtime.set_engine(engine);
        builder.set_runtime(Arc::new(runtime));
        Ok(builder)
    }

    fn run_core(&self, mut spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let _tokio = self.engine.runtime.enter();
        let budget = SharedBudget::new(spec.limits.memory_bytes);
        let mut engine = self.engine.engine.clone();
        {
            use wasmer::sys::NativeEngineExt;
            engine.set_tunables(BudgetTunables::new(budget.clone()));
        }
        let mut store = Store::new(engine.clone());
        let instantiated = if self.has_memory() {
            let builder = self.wasi_env(&mut spec, engine)?;
            let _span = tracing::debug_span!("instantiate", engine = NAME).entered();
            builder
                .instantiate(self.module.clone(), &mut store)
                .map(|(instance, env)| (instance, Some(env)))
        } else {
            // wasmer-wasix needs a memory to build its environment. A module without one
            // cannot use WASI anyway; it runs on its own (no imports).
            let _span = tracing::debug_span!("instantiate", engine = NAME).entered();
            wasmer::Instance::new(&mut store, &self.module, &wasmer::Imports::new())
                .map(|instance| (instance, None))
                .map_err(WasiRuntimeError::from)
        };
        let (instance, env) = match instantiated {
            Ok(pair) => pair,
            Err(e) => return instantiate_failure(e, &budget, &spec),
        };

        let name = spec.entry.as_deref().unwrap_or("_start");
        let not_runnable = |reason: &str| Error::EntryFunction {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        let entry = match instance.exports.get_function(name) {
            Ok(f) if f.ty(&store).params().is_empty() => f.clone(),
            Ok(_) => return finish(env, &mut store, Err(not_runnable("it takes parameters"))),
            Err(_) => {
                return finish(
                    env,
                    &mut store,
                    Err(not_runnable("no such exported function")),
                );
            }
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
        let run = RawRun {
            outcome,
            memory_denied: budget.denied(),
        };
        finish(env, &mut store, Ok(run))
    }

    /// Whether the module imports or exports a memory (WASI needs one).
    fn has_memory(&self) -> bool {
        self.module.exports().memories().next().is_some()
            || self.module.imports().memories().next().is_some()
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

/// Lets wasmer-wasix close the guest's files and end its process, whatever happened.
fn finish(
    env: Option<WasiFunctionEnv>,
    store: &mut Store,
    result: Result<RawRun>,
) -> Result<RawRun> {
    let Some(env) = env else {
        return result;
    };
    let code = match &result {
        Ok(RawRun {
            outcome: RawOutcome::Exit(n),
            ..
        }) => *n as u16,
        Ok(RawRun {
            outcome: RawOutcome::Returned,
            ..
        }) => 0,
        _ => 1,
    };
    env.on_exit(store, Some(code.into()));
    result
}

/// Instantiation failed: a trap in a start function or a memory the limit refused is
/// the guest's outcome; anything else is a link problem.
fn instantiate_failure(
    error: WasiRuntimeError,
    budget: &SharedBudget,
    spec: &RunSpec,
) -> Result<RawRun> {
    let guest_outcome = match &error {
        WasiRuntimeError::Thread(WasiThreadError::InstanceCreateFailed(e)) => match &**e {
            InstantiationError::Start(trap) => Some(outcome_of(trap)),
            _ => None,
        },
        WasiRuntimeError::Instantiation(InstantiationError::Start(trap)) => Some(outcome_of(trap)),
        WasiRuntimeError::Thread(WasiThreadError::InitFailed(e)) => {
            Some(RawOutcome::Trap(TrapKind::Other, format!("{e:#}")))
        }
        _ => None,
    };
    let memory_denied = budget.denied();
    match guest_outcome {
        Some(outcome) => Ok(RawRun {
            outcome,
            memory_denied,
        }),
        None if memory_denied => Ok(RawRun {
            outcome: RawOutcome::Trap(TrapKind::Other, error.to_string()),
            memory_denied,
        }),
        None => Err(Error::link(&spec.wasm.origin, error)),
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
