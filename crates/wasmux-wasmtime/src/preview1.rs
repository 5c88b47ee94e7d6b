//! WASI preview1 for core modules: wasmux's own (`wasmux-wasi-preview1`), the one every
//! other engine links, each host function bound over the guest's memory. One preview1
//! for every engine, so what a guest may open (no device nodes, nothing beyond its
//! preopens, `ro` kept), the errnos and the exit statuses are decided once. wasmtime-wasi
//! still serves components (preview2), and stays the differential suite's oracle for
//! preview1 (the conformance crate's `reference`).

use wasmtime::{Caller, Extern, FuncType, Linker, Memory, Val, ValType};
use wasmtime_wasi::I32Exit;
use wasmux_wasi_preview1::{FUNCTIONS, MODULE, Stop, WasiHost};

use crate::run::CoreState;

/// A core module run's WASI: the state, and the guest's memory once instantiated.
pub(crate) struct CoreWasi {
    pub(crate) host: WasiHost,
    pub(crate) memory: Option<Memory>,
}

/// Defines every `wasi_snapshot_preview1` function in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<CoreState>) -> wasmtime::Result<()> {
    for (index, function) in FUNCTIONS.iter().enumerate() {
        let params = function.params.iter().map(|t| match t {
            wasmux_wasi_preview1::ValType::I32 => ValType::I32,
            wasmux_wasi_preview1::ValType::I64 => ValType::I64,
        });
        let results = function.returns_errno.then_some(ValType::I32);
        let ty = FuncType::new(linker.engine(), params, results);
        linker.func_new(
            MODULE,
            function.name,
            ty,
            move |mut caller, args, results| call(&mut caller, index, args, results),
        )?;
    }
    Ok(())
}

/// One host call: the arguments as 64-bit slots, the guest's memory as bytes.
fn call(
    caller: &mut Caller<'_, CoreState>,
    index: usize,
    args: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let memory = match caller.data().wasi.memory {
        Some(memory) => memory,
        None => match caller.get_export("memory") {
            Some(Extern::Memory(memory)) => memory,
            _ => {
                return Err(wasmtime::Error::msg(
                    "WASI needs the module to export its memory",
                ));
            }
        },
    };
    let slots = args.iter().map(|value| match value {
        Val::I32(x) => u64::from(*x as u32),
        Val::I64(x) => *x as u64,
        _ => 0,
    });
    let (bytes, state) = memory.data_and_store_mut(caller);
    match state.wasi.host.call_with(index, bytes, slots) {
        Ok(errno) => {
            if let Some(result) = results.first_mut() {
                *result = Val::I32(errno);
            }
            Ok(())
        }
        // I32Exit keeps the u32 status's bits; the outcome reads them back unsigned.
        Err(Stop::Exit(status)) => Err(I32Exit(status as i32).into()),
        Err(Stop::Trap(message)) => Err(wasmtime::Error::msg(message)),
    }
}
