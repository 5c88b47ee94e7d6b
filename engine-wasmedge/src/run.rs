//! One run: a thread of its own with a native stack sized for AOT code, a fresh
//! executor and store, wasmux's WASI and the guard imports linked as host functions.

use wasmux_engine_api::{Descriptor, Error, Module, RawRun, Result, RunControl, RunSpec};
use wasmux_guard::{Ended, GuardedHost, imports, on_own_thread};

use crate::WasmEdgeModule;
use crate::ffi::{Call, Instance};

/// The run thread's native stack: AOT code runs on it (the interpreter keeps its frames
/// on the heap). [`MAX_DEPTH`](crate::MAX_DEPTH) frames of up to 2 KiB fit; only what
/// is touched is ever committed.
const NATIVE_STACK: usize = 64 << 20;

fn ended(call: Call) -> Ended {
    match call {
        Call::Returned => Ended::Returned,
        Call::HostStopped => Ended::HostStopped,
        Call::Trap(kind, message) => Ended::Trap(kind, message),
    }
}

impl WasmEdgeModule {
    fn run_on_this_thread(&self, mut spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let depth = Some(crate::MAX_DEPTH);
        let mut host = match GuardedHost::new(&mut spec, control, self.initial_memory, depth)? {
            Ok(host) => host,
            Err(refused) => return Ok(refused),
        };
        let entry = spec.entry.as_deref().unwrap_or("_start");
        let call = {
            let _span =
                tracing::debug_span!("instantiate", engine = self.descriptor.name).entered();
            let instance = Instance::new(&self.config, &self.ast, &imports(), &mut host);
            drop(_span);
            match instance {
                Ok(mut instance) => {
                    let _span = tracing::debug_span!("call", engine = self.descriptor.name, entry)
                        .entered();
                    instance
                        .call(entry)
                        .map_err(|reason| Error::EntryFunction {
                            name: entry.to_owned(),
                            reason,
                        })?
                }
                // Unknown imports were refused at load; what fails here is the start
                // function, which is part of the run.
                Err(call) => call,
            }
        };
        Ok(host.finish(ended(call)))
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
