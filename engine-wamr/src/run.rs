//! One run: a thread of its own (WAMR's per-thread state and a native stack sized for
//! host calls), a fresh instance of the loaded module, wasmux's WASI and the guard
//! imports the instrumented module calls.

use wasmux_engine_api::{Descriptor, Error, Module, RawRun, Result, RunControl, RunSpec};
use wasmux_guard::{Ended, GuardedHost, MAX_DEPTH, on_own_thread};

use crate::ffi::{Call, Instance, ThreadEnv};
use crate::outcome::trap_kind;
use crate::{DESCRIPTOR, NAME, WamrModule};

/// WAMR's stack per run, for the interpreter's frames and operands: [`MAX_DEPTH`]
/// frames of about 3 KiB fit. Allocated with the run, committed only as it is used.
const WAMR_STACK: u32 = 64 << 20;
/// The run thread's native stack: the interpreter loop and the host calls (WASI) run
/// on it; WASM-to-WASM calls do not recurse natively.
const NATIVE_STACK: usize = 8 << 20;

impl WamrModule {
    fn run_on_this_thread(&self, mut spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let _thread = ThreadEnv::new()
            .map_err(|e| Error::io("preparing the run thread", std::io::Error::other(e)))?;
        let mut host =
            match GuardedHost::new(&mut spec, control, self.initial_memory, Some(MAX_DEPTH))? {
                Ok(host) => host,
                Err(refused) => return Ok(refused),
            };
        let entry = spec.entry.as_deref().unwrap_or("_start");
        let ended = {
            let _span = tracing::debug_span!("instantiate", engine = NAME).entered();
            let mut instance =
                Instance::new(&self.module, WAMR_STACK, &mut host).map_err(|e| Error::Link {
                    path: self.origin.clone(),
                    message: format!("WAMR cannot instantiate this module: {e}"),
                })?;
            drop(_span);
            let _span = tracing::debug_span!("call", engine = NAME, entry).entered();
            match instance
                .call(entry)
                .map_err(|reason| Error::EntryFunction {
                    name: entry.to_owned(),
                    reason,
                })? {
                Call::Returned => Ended::Returned,
                Call::HostStopped => Ended::HostStopped,
                Call::Trap(message) => Ended::Trap(trap_kind(&message), message),
            }
        };
        Ok(host.finish(ended))
    }
}

impl Module for WamrModule {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        on_own_thread(NAME, NATIVE_STACK, || {
            self.run_on_this_thread(spec, control)
        })
    }
}
