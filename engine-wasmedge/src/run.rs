//! One run: a thread of its own with a native stack sized for AOT code, a fresh
//! executor and store, wasmux's WASI and the guard imports linked as host functions.

use wasmux_engine_api::{Descriptor, Module, RawRun, Result, RunControl, RunSpec};
use wasmux_guard::{MAX_DEPTH, Prepared, entry_failed, imports, on_own_thread, run_guarded};

use crate::WasmEdgeModule;
use crate::ffi::Instance;

/// The run thread's native stack: AOT code runs on it (the interpreter keeps its frames
/// on the heap). [`MAX_DEPTH`](crate::MAX_DEPTH) frames of up to 2 KiB fit; only what
/// is touched is ever committed.
const NATIVE_STACK: usize = 64 << 20;

impl WasmEdgeModule {
    fn run_on_this_thread(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let engine = self.descriptor.name;
        let prepared = Prepared {
            engine,
            origin: &self.origin,
            initial_memory: self.initial_memory,
            max_depth: Some(MAX_DEPTH),
        };
        run_guarded(prepared, spec, control, |host, entry| {
            let span = tracing::debug_span!("instantiate", engine).entered();
            let instance = Instance::new(&self.config, &self.ast, &imports(), host);
            drop(span);
            match instance {
                Ok(mut instance) => {
                    let _span = tracing::debug_span!("call", engine, entry).entered();
                    instance.call(entry).map_err(|e| entry_failed(entry, e))
                }
                // Unknown imports were refused at load; what fails here is the start
                // function, which is part of the run.
                Err(ended) => Ok(ended),
            }
        })
    }
}

impl Module for WasmEdgeModule {
    fn descriptor(&self) -> &'static Descriptor {
        self.descriptor
    }

    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        on_own_thread(self.descriptor.name, NATIVE_STACK, || {
            self.run_on_this_thread(spec, control)
        })
    }
}
