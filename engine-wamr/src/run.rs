//! WAMR's part of a guarded run: WAMR's per-thread state, a fresh instance of the loaded
//! module linked to the guarded host.

use wasmux_engine_api::{Descriptor, Error, Result};
use wasmux_guard::{
    Ended, GuardedCode, GuardedHost, Prepared, call_in_order, entry_failed, instantiate_failed,
};

use crate::ffi::{Instance, ThreadEnv};
use crate::{DESCRIPTOR, NAME, WamrCode};

/// WAMR's stack per run, for the interpreter's frames and operands. WAMR zeroes all of
/// it when a run starts (8 MiB cost 4 ms of a 24 ms hello here), so it is sized for
/// depth rather than generosity: [`MAX_DEPTH`](wasmux_guard::MAX_DEPTH) frames of about
/// 100 bytes. A deeper or larger-framed recursion traps as a stack overflow, like one
/// past the depth guard.
const WAMR_STACK: u32 = 2 << 20;
/// The run thread's native stack: the interpreter loop and the host calls (WASI) run
/// on it; WASM-to-WASM calls do not recurse natively.
const NATIVE_STACK: usize = 8 << 20;

impl GuardedCode for WamrCode {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn native_stack(&self) -> usize {
        NATIVE_STACK
    }

    fn instantiate_and_call(
        &self,
        host: &mut GuardedHost<'_>,
        calls: &[&str],
        module: Prepared<'_>,
    ) -> Result<Ended> {
        let _thread = ThreadEnv::new()
            .map_err(|e| Error::io("preparing the run thread", std::io::Error::other(e)))?;
        let span = tracing::debug_span!("instantiate", engine = NAME).entered();
        let mut instance = Instance::new(&self.module, WAMR_STACK, host)
            .map_err(|e| instantiate_failed(module, e))?;
        drop(span);
        call_in_order(calls, |entry| {
            let _span = tracing::debug_span!("call", engine = NAME, entry).entered();
            instance.call(entry).map_err(|e| entry_failed(entry, e))
        })
    }
}
