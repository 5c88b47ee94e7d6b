//! One run: a thread of its own (wasm3's interpreter recurses on the native stack, and
//! its environments cannot cross threads), a fresh wasm3 environment, wasmux's WASI and
//! the guard imports the instrumented module calls.

use wasmux_engine_api::{Descriptor, Error, Module, RawRun, Result, RunControl, RunSpec};
use wasmux_guard::{Ended, GuardedHost, imports, on_own_thread};

use crate::ffi::{Call, Instance};
use crate::outcome::trap_kind;
use crate::{DESCRIPTOR, NAME, Wasm3Module};

/// wasm3's value stack per run, in bytes: 8-byte slots, about a million of them.
const VALUE_STACK: u32 = 8 << 20;
/// The run thread's native stack. wasm3 guards its own recursion against about 8 MiB
/// of native stack; this leaves it room to trap cleanly instead of crashing.
const NATIVE_STACK: usize = 32 << 20;

impl Wasm3Module {
    fn run_on_this_thread(&self, mut spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let mut host = match GuardedHost::new(&mut spec, control, self.initial_memory, None)? {
            Ok(host) => host,
            Err(refused) => return Ok(refused),
        };
        let entry = spec.entry.as_deref().unwrap_or("_start");
        let ended = {
            let _span = tracing::debug_span!("instantiate", engine = NAME).entered();
            let mut instance = Instance::new(&self.bytes, VALUE_STACK, &imports(), &mut host)
                .map_err(|e| Error::Link {
                    path: self.origin.clone(),
                    message: format!("wasm3 cannot run this module: {e}"),
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
