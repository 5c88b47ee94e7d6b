//! wasm3's part of a guarded run: a fresh wasm3 environment per run (its environments
//! cannot cross threads, and its interpreter recurses on the native stack), linked to
//! the guarded host.

use wasmux_core::Descriptor;
use wasmux_guard::{Ended, GuardedCode, GuardedHost, GuardedInstance, NotInstantiated, imports};

use crate::ffi::Instance;
use crate::{DESCRIPTOR, Wasm3Code, outcome};

/// wasm3's value stack per run, in bytes: 8-byte slots, about a million of them.
const VALUE_STACK: u32 = 8 << 20;

impl GuardedCode for Wasm3Code {
    type Instance<'a, 'h>
        = Instance<'a, 'h>
    where
        'h: 'a;

    /// wasm3 guards its own recursion against about 8 MiB of native stack; this leaves
    /// it room to trap cleanly instead of crashing.
    const NATIVE_STACK: usize = 32 << 20;

    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn instantiate<'a, 'h>(
        &'a self,
        host: &'a mut GuardedHost<'h>,
    ) -> Result<Instance<'a, 'h>, NotInstantiated> {
        Instance::new(&self.bytes, VALUE_STACK, &imports(), host).map_err(|message| {
            match outcome::instantiation_trap(&message) {
                Some(kind) => NotInstantiated::Ended(Ended::Trap(kind, message)),
                None => NotInstantiated::Refused(message),
            }
        })
    }
}

impl GuardedInstance for Instance<'_, '_> {
    fn call(&mut self, entry: &str) -> Result<Ended, String> {
        Instance::call(self, entry)
    }
}
