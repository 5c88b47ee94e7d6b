//! WAMR's part of a guarded run: WAMR's per-thread state, a fresh instance of the loaded
//! module linked to the guarded host.

use wasmux_core::{Descriptor, Error};
use wasmux_guard::{Ended, GuardedCode, GuardedHost, GuardedInstance, NotInstantiated};

use crate::ffi::{Instance, ThreadEnv};
use crate::{DESCRIPTOR, NAME, WamrCode, outcome};

/// WAMR's stack per run, for the interpreter's frames and operands. WAMR zeroes all of
/// it when a run starts (8 MiB cost 4 ms of a 24 ms hello here), so it is sized for
/// depth rather than generosity: [`MAX_DEPTH`](wasmux_guard::MAX_DEPTH) frames of about
/// 100 bytes. A deeper or larger-framed recursion traps as a stack overflow, like one
/// past the depth guard.
const WAMR_STACK: u32 = 2 << 20;

/// An instance on a thread WAMR has set up; the instance goes first (fields drop in
/// order), the thread's WAMR state after it.
pub struct WamrInstance<'a, 'h> {
    instance: Instance<'a, 'h>,
    _thread: ThreadEnv,
}

impl GuardedCode for WamrCode {
    type Instance<'a, 'h>
        = WamrInstance<'a, 'h>
    where
        'h: 'a;

    /// The interpreter loop and the host calls (WASI) run on it; WASM-to-WASM calls do
    /// not recurse natively.
    const NATIVE_STACK: usize = 8 << 20;

    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn instantiate<'a, 'h>(
        &'a self,
        host: &'a mut GuardedHost<'h>,
    ) -> Result<WamrInstance<'a, 'h>, NotInstantiated> {
        let thread = ThreadEnv::new().map_err(|e| {
            NotInstantiated::Failed(Error::engine_while(NAME, "preparing the run thread", e))
        })?;
        let instance = Instance::new(&self.module, WAMR_STACK, host).map_err(|message| {
            match outcome::instantiation_trap(&message) {
                Some(kind) => NotInstantiated::Ended(Ended::Trap(kind, message)),
                None => NotInstantiated::Refused(message),
            }
        })?;
        Ok(WamrInstance {
            instance,
            _thread: thread,
        })
    }
}

impl GuardedInstance for WamrInstance<'_, '_> {
    fn call(&mut self, entry: &str) -> Result<Ended, String> {
        self.instance.call(entry)
    }
}
