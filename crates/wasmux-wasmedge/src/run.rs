//! WasmEdge's part of a guarded run: a fresh executor and store, the guarded host linked
//! as host functions, on a native stack sized for AOT code.

use wasmux_core::Descriptor;
use wasmux_guard::{Ended, GuardedCode, GuardedHost, GuardedInstance, NotInstantiated, imports};

use crate::WasmEdgeCode;
use crate::ffi::Instance;

impl GuardedCode for WasmEdgeCode {
    type Instance<'a, 'h>
        = Instance<'a, 'h>
    where
        'h: 'a;

    /// AOT code runs on it (the interpreter keeps its frames on the heap).
    /// [`MAX_DEPTH`](crate::MAX_DEPTH) frames of up to 2 KiB fit; only what is touched
    /// is ever committed.
    const NATIVE_STACK: usize = 64 << 20;

    fn descriptor(&self) -> &'static Descriptor {
        self.descriptor
    }

    /// Unknown imports were refused at load; what fails here is the start function,
    /// which is part of the run.
    fn instantiate<'a, 'h>(
        &'a self,
        host: &'a mut GuardedHost<'h>,
    ) -> Result<Instance<'a, 'h>, NotInstantiated> {
        Instance::new(&self.config, &self.ast, &imports(), host).map_err(NotInstantiated::Ended)
    }
}

impl GuardedInstance for Instance<'_, '_> {
    fn call(&mut self, entry: &str) -> Result<Ended, String> {
        Instance::call(self, entry)
    }
}
