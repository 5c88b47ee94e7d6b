//! One run: a thread of its own (wasm3's interpreter recurses on the native stack, and
//! its environments cannot cross threads), a fresh wasm3 environment, wasmux's WASI and
//! the guard imports the instrumented module calls.

use wasmux_engine_api::{Descriptor, Module, RawRun, Result, RunControl, RunSpec};
use wasmux_guard::{
    Prepared, entry_failed, imports, instantiate_failed, on_own_thread, run_guarded,
};

use crate::ffi::Instance;
use crate::{DESCRIPTOR, NAME, Wasm3Module};

/// wasm3's value stack per run, in bytes: 8-byte slots, about a million of them.
const VALUE_STACK: u32 = 8 << 20;
/// The run thread's native stack. wasm3 guards its own recursion against about 8 MiB
/// of native stack; this leaves it room to trap cleanly instead of crashing.
const NATIVE_STACK: usize = 32 << 20;

impl Wasm3Module {
    fn run_on_this_thread(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let prepared = Prepared {
            engine: NAME,
            origin: &self.origin,
            initial_memory: self.initial_memory,
            max_depth: None,
        };
        run_guarded(prepared, spec, control, |host, entry| {
            let span = tracing::debug_span!("instantiate", engine = NAME).entered();
            let mut instance = Instance::new(&self.bytes, VALUE_STACK, &imports(), host)
                .map_err(|e| instantiate_failed(prepared, e))?;
            drop(span);
            let _span = tracing::debug_span!("call", engine = NAME, entry).entered();
            instance.call(entry).map_err(|e| entry_failed(entry, e))
        })
    }
}

impl Module for Wasm3Module {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        on_own_thread(NAME, NATIVE_STACK, || {
            self.run_on_this_thread(spec, control)
        })
    }
}
