//! WASI preview1 for wasmer: wasmux's sandboxed implementation (`wasmux-wasi-preview1`,
//! the one the guarded engines link), each of its host functions bound as a wasmer
//! function over the guest's memory. One WASI for every engine but wasmtime, so the
//! file-system semantics (errnos, rights, read-only preopens, what `..` and symlinks may
//! reach) are decided once.

use std::fmt;

use wasmer::{
    Function, FunctionEnv, FunctionEnvMut, FunctionType, Imports, Memory, RuntimeError, Store,
    Type, Value,
};
use wasmux_wasi_preview1::{FUNCTIONS, MODULE, Stop, ValType, WasiHost};

/// What every host function of a run shares: the run's WASI state, and the guest's
/// memory once the instance exists.
pub(crate) struct HostEnv {
    wasi: WasiHost,
    memory: Option<Memory>,
}

/// `proc_exit`'s status, carried out of the guest as the error that unwinds it.
#[derive(Debug)]
pub(crate) struct GuestExit(pub(crate) u32);

impl fmt::Display for GuestExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the guest exited with status {}", self.0)
    }
}

impl std::error::Error for GuestExit {}

/// The run's environment and the `wasi_snapshot_preview1` imports bound to it.
pub(crate) fn imports(store: &mut Store, wasi: WasiHost) -> (FunctionEnv<HostEnv>, Imports) {
    let env = FunctionEnv::new(store, HostEnv { wasi, memory: None });
    let mut imports = Imports::new();
    for (index, function) in FUNCTIONS.iter().enumerate() {
        let params: Vec<Type> = function.params.iter().map(wasm_type).collect();
        let results: &[Type] = if function.returns_errno {
            &[Type::I32]
        } else {
            &[]
        };
        let ty = FunctionType::new(params, results);
        let host = Function::new_with_env(store, &env, ty, move |env, args| call(env, index, args));
        imports.define(MODULE, function.name, host);
    }
    (env, imports)
}

/// Gives the host functions the instance's exported memory.
pub(crate) fn attach_memory(store: &mut Store, env: &FunctionEnv<HostEnv>, memory: Memory) {
    env.as_mut(store).memory = Some(memory);
}

fn wasm_type(t: &ValType) -> Type {
    match t {
        ValType::I32 => Type::I32,
        ValType::I64 => Type::I64,
    }
}

/// One host call: the arguments as 64-bit slots, the guest's memory as bytes.
fn call(
    mut env: FunctionEnvMut<HostEnv>,
    index: usize,
    args: &[Value],
) -> Result<Vec<Value>, RuntimeError> {
    let (host, store) = env.data_and_store_mut();
    let memory = host
        .memory
        .as_ref()
        .ok_or_else(|| RuntimeError::new("WASI needs the module to export its memory"))?;
    let view = memory.view(&store);
    // SAFETY: the guest is suspended in this host call, on this thread, and nothing else
    // touches its memory until the call returns: no other reference to these bytes
    // exists while `bytes` lives, and WASI calls never grow the memory.
    #[allow(unsafe_code)]
    let bytes = unsafe { view.data_unchecked_mut() };
    let slots = args.iter().map(|value| match value {
        Value::I32(x) => u64::from(*x as u32),
        Value::I64(x) => *x as u64,
        _ => 0,
    });
    match host.wasi.call_with(index, bytes, slots) {
        Ok(errno) if FUNCTIONS[index].returns_errno => Ok(vec![Value::I32(errno)]),
        Ok(_) => Ok(Vec::new()),
        Err(Stop::Exit(status)) => Err(RuntimeError::user(Box::new(GuestExit(status)))),
        Err(Stop::Trap(message)) => Err(RuntimeError::new(message)),
    }
}
