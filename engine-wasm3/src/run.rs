//! wasm3's part of a guarded run: a fresh wasm3 environment per run (its environments
//! cannot cross threads, and its interpreter recurses on the native stack), linked to
//! the guarded host.

use wasmux_engine_api::{Descriptor, Result};
use wasmux_guard::{
    Ended, GuardedCode, GuardedHost, Prepared, call_in_order, entry_failed, imports,
    instantiate_failed,
};

use crate::ffi::Instance;
use crate::{DESCRIPTOR, NAME, Wasm3Code};

/// wasm3's value stack per run, in bytes: 8-byte slots, about a million of them.
const VALUE_STACK: u32 = 8 << 20;
/// The run thread's native stack. wasm3 guards its own recursion against about 8 MiB
/// of native stack; this leaves it room to trap cleanly instead of crashing.
const NATIVE_STACK: usize = 32 << 20;

impl GuardedCode for Wasm3Code {
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
        let span = tracing::debug_span!("instantiate", engine = NAME).entered();
        let mut instance = Instance::new(&self.bytes, VALUE_STACK, &imports(), host)
            .map_err(|e| instantiate_failed(module, e))?;
        drop(span);
        call_in_order(calls, |entry| {
            let _span = tracing::debug_span!("call", engine = NAME, entry).entered();
            instance.call(entry).map_err(|e| entry_failed(entry, e))
        })
    }
}
