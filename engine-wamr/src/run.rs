//! One run: a thread of its own (WAMR's per-thread state and a native stack sized for
//! host calls), a fresh instance of the loaded module, wasmux's WASI and the guard
//! imports the instrumented module calls.

use wasmux_engine_api::{Descriptor, Error, Module, RawRun, Result, RunControl, RunSpec};
use wasmux_guard::{
    MAX_DEPTH, Prepared, entry_failed, instantiate_failed, on_own_thread, run_guarded,
};

use crate::ffi::{Instance, ThreadEnv};
use crate::{DESCRIPTOR, NAME, WamrModule};

/// WAMR's stack per run, for the interpreter's frames and operands. WAMR zeroes all of
/// it when a run starts (8 MiB cost 4 ms of a 24 ms hello here), so it is sized for
/// depth rather than generosity: [`MAX_DEPTH`] frames of about 100 bytes. A deeper or
/// larger-framed recursion traps as a stack overflow, like one past the depth guard.
const WAMR_STACK: u32 = 2 << 20;
/// The run thread's native stack: the interpreter loop and the host calls (WASI) run
/// on it; WASM-to-WASM calls do not recurse natively.
const NATIVE_STACK: usize = 8 << 20;

impl WamrModule {
    fn run_on_this_thread(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let _thread = ThreadEnv::new()
            .map_err(|e| Error::io("preparing the run thread", std::io::Error::other(e)))?;
        let prepared = Prepared {
            engine: NAME,
            origin: &self.origin,
            initial_memory: self.initial_memory,
            max_depth: Some(MAX_DEPTH),
        };
        run_guarded(prepared, spec, control, |host, entry| {
            let span = tracing::debug_span!("instantiate", engine = NAME).entered();
            let mut instance = Instance::new(&self.module, WAMR_STACK, host)
                .map_err(|e| instantiate_failed(prepared, e))?;
            drop(span);
            let _span = tracing::debug_span!("call", engine = NAME, entry).entered();
            instance.call(entry).map_err(|e| entry_failed(entry, e))
        })
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
