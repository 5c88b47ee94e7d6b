//! WasmEdge's part of a guarded run: a fresh executor and store, the guarded host linked
//! as host functions, on a native stack sized for AOT code.

use wasmux_engine_api::{Descriptor, Result};
use wasmux_guard::{
    Ended, GuardedCode, GuardedHost, Prepared, call_in_order, entry_failed, imports,
};

use crate::WasmEdgeCode;
use crate::ffi::Instance;

/// The run thread's native stack: AOT code runs on it (the interpreter keeps its frames
/// on the heap). [`MAX_DEPTH`](crate::MAX_DEPTH) frames of up to 2 KiB fit; only what
/// is touched is ever committed.
const NATIVE_STACK: usize = 64 << 20;

impl GuardedCode for WasmEdgeCode {
    fn descriptor(&self) -> &'static Descriptor {
        self.descriptor
    }

    fn native_stack(&self) -> usize {
        NATIVE_STACK
    }

    fn instantiate_and_call(
        &self,
        host: &mut GuardedHost<'_>,
        calls: &[&str],
        _module: Prepared<'_>,
    ) -> Result<Ended> {
        let engine = self.descriptor.name;
        let span = tracing::debug_span!("instantiate", engine).entered();
        let instance = Instance::new(&self.config, &self.ast, &imports(), host);
        drop(span);
        match instance {
            Ok(mut instance) => call_in_order(calls, |entry| {
                let _span = tracing::debug_span!("call", engine, entry).entered();
                instance.call(entry).map_err(|e| entry_failed(entry, e))
            }),
            // Unknown imports were refused at load; what fails here is the start
            // function, which is part of the run.
            Err(ended) => Ok(ended),
        }
    }
}
