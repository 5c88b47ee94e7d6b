//! The backend's only unsafe code: a safe wrapper over wasm3's C API (through
//! `wasm3x-sys`), covering exactly what the runner needs.
//!
//! Ownership follows wasm3's rules: an [`Instance`] owns one environment and one runtime;
//! the runtime owns the module once loaded; the module's bytes are borrowed for the
//! instance's lifetime (wasm3 keeps pointers into them). None of it is `Send`: an
//! instance lives and dies on the thread that made it.
//!
//! Host functions all go through one trampoline. Each linked import gets a [`Slot`]
//! (its number, arity and the [`GuardedHost`] to run) whose address is wasm3's userdata
//! for that import; the trampoline unpacks the argument slots, hands the guest's memory
//! over as a byte slice, and writes the result back. A host call that must end the guest
//! returns [`HOST_STOP`]; the reason stays with the [`GuardedHost`].
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_void};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use wasm3x_sys as sys;
use wasmux_guard::{Ended, GuardedHost, Import, ValType};

use crate::outcome::trap_kind;

/// Returned by the trampoline to make wasm3 unwind; recognised by its address.
static HOST_STOP: &CStr = c"wasmux: a host call ended the guest";

/// The most argument slots a preview1 function takes (path_open) is 9.
const MAX_ARGS: usize = 16;

struct Slot<'h> {
    host: *mut GuardedHost<'h>,
    import: usize,
    params: usize,
    results: usize,
}

/// A module loaded, linked and compiled in a runtime of its own.
/// Public only to be the `GuardedCode::Instance` of this engine; the module is private.
pub struct Instance<'a, 'h> {
    environment: sys::IM3Environment,
    runtime: sys::IM3Runtime,
    /// Userdata of the linked imports; wasm3 holds their addresses, so each is boxed
    /// and never moves when the vector grows.
    #[allow(clippy::vec_box)]
    _slots: Vec<Box<Slot<'h>>>,
    /// wasm3 keeps pointers into the bytes and calls into the host.
    _borrows: PhantomData<(&'a [u8], &'a mut GuardedHost<'h>)>,
}

/// Turns a wasm3 result into `Err(message)`.
fn check(result: sys::M3Result) -> Result<(), String> {
    if result.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null M3Result is a NUL-terminated static string.
    Err(unsafe { CStr::from_ptr(result) }
        .to_string_lossy()
        .into_owned())
}

/// `error` with the details wasm3 recorded in `runtime` (a compile error's opcode).
fn with_details(runtime: sys::IM3Runtime, error: String) -> String {
    // SAFETY: M3ErrorInfo is plain pointers and integers, for which zero is valid.
    let mut info: sys::M3ErrorInfo = unsafe { std::mem::zeroed() };
    // SAFETY: the runtime is valid; wasm3 copies its last error into `info`, whose
    // message is null or a NUL-terminated string the runtime owns, read right away.
    unsafe { sys::m3_GetErrorInfo(runtime, &mut info) };
    if info.message.is_null() {
        return error;
    }
    // SAFETY: checked non-null just above; valid until the runtime's next error.
    let details = unsafe { CStr::from_ptr(info.message) }.to_string_lossy();
    if details.is_empty() {
        error
    } else {
        format!("{error}: {details}")
    }
}

/// wasm3's signature string for an import, such as `i(iIi)`.
fn signature(import: &Import) -> String {
    let letter = |t: &ValType| match t {
        ValType::I32 => 'i',
        ValType::I64 => 'I',
    };
    let result = import.result.as_ref().map_or('v', letter);
    let params: String = import.params.iter().map(letter).collect();
    format!("{result}({params})")
}

fn c_string(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}

impl<'a, 'h> Instance<'a, 'h> {
    /// Parses, loads, links `imports` to `host` and compiles every function, so a
    /// module wasm3 cannot run fails here and not halfway through a run.
    pub(crate) fn new(
        bytes: &'a [u8],
        stack_bytes: u32,
        imports: &[Import],
        host: &'a mut GuardedHost<'h>,
    ) -> Result<Self, String> {
        let length = u32::try_from(bytes.len()).map_err(|_| "the module is over 4 GiB")?;
        // SAFETY: plain constructors; null means allocation failed.
        let environment = unsafe { sys::m3_NewEnvironment() };
        if environment.is_null() {
            return Err("wasm3 could not allocate an environment".into());
        }
        // SAFETY: the environment is valid; wasm3 copies nothing from the null userdata.
        let runtime = unsafe { sys::m3_NewRuntime(environment, stack_bytes, ptr::null_mut()) };
        let mut instance = Instance {
            environment,
            runtime,
            _slots: Vec::new(),
            _borrows: PhantomData,
        };
        if runtime.is_null() {
            return Err("wasm3 could not allocate a runtime".into());
        }
        let mut module: sys::IM3Module = ptr::null_mut();
        // SAFETY: `bytes` outlives the instance (lifetime 'a), as wasm3 requires.
        check(unsafe { sys::m3_ParseModule(environment, &mut module, bytes.as_ptr(), length) })?;
        // SAFETY: on success the runtime owns the module; on failure we still do.
        if let Err(e) = check(unsafe { sys::m3_LoadModule(runtime, module) }) {
            unsafe { sys::m3_FreeModule(module) };
            return Err(e);
        }
        let host: *mut GuardedHost<'h> = host;
        for (number, import) in imports.iter().enumerate() {
            let slot = Box::new(Slot {
                host,
                import: number,
                params: import.params.len(),
                results: usize::from(import.result.is_some()),
            });
            let (module_name, name) = (c_string(import.module)?, c_string(import.name)?);
            let signature = c_string(&signature(import))?;
            // SAFETY: the strings are copied or only read during the call (wasm3 keeps
            // none of them); the slot's address stays valid as long as the instance.
            let linked = unsafe {
                sys::m3_LinkRawFunctionEx(
                    module,
                    module_name.as_ptr(),
                    name.as_ptr(),
                    signature.as_ptr(),
                    Some(trampoline),
                    &*slot as *const Slot<'h> as *const c_void,
                )
            };
            instance._slots.push(slot);
            // SAFETY: m3Err_functionLookupFailed is a static of the C library.
            if linked != unsafe { sys::m3Err_functionLookupFailed } {
                check(linked)
                    .map_err(|e| format!("linking {}.{}: {e}", import.module, import.name))?;
            }
        }
        // SAFETY: the module is loaded in this instance's runtime.
        check(unsafe { sys::m3_CompileModule(module) })
            .map_err(|e| with_details(instance.runtime, e))?;
        Ok(instance)
    }

    /// Calls the exported function `name`, which must take no parameters.
    pub(crate) fn call(&mut self, name: &str) -> Result<Ended, String> {
        let c_name = c_string(name)?;
        let mut function: sys::IM3Function = ptr::null_mut();
        // SAFETY: the runtime is valid; `function` stays valid as long as it.
        check(unsafe { sys::m3_FindFunction(&mut function, self.runtime, c_name.as_ptr()) })
            .map_err(|_| "no such exported function".to_owned())?;
        // SAFETY: `function` was just found in this runtime.
        if unsafe { sys::m3_GetArgCount(function) } != 0 {
            return Err("it takes parameters".into());
        }
        // SAFETY: no arguments are passed, as the function takes none.
        let result = unsafe { sys::m3_Call(function, 0, ptr::null_mut()) };
        if result.is_null() {
            return Ok(Ended::Returned);
        }
        if ptr::eq(result, HOST_STOP.as_ptr()) {
            return Ok(Ended::HostStopped);
        }
        let message = check(result).err().unwrap_or_default();
        Ok(Ended::Trap(trap_kind(&message), message))
    }
}

impl Drop for Instance<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: each was created by this instance and is freed once, runtime first
        // (it owns the module and refers to the environment).
        unsafe {
            if !self.runtime.is_null() {
                sys::m3_FreeRuntime(self.runtime);
            }
            sys::m3_FreeEnvironment(self.environment);
        }
    }
}

/// Every import's entry point: see the module docs.
unsafe extern "C" fn trampoline(
    runtime: sys::IM3Runtime,
    context: sys::IM3ImportContext,
    stack: *mut u64,
    _memory: *mut c_void,
) -> *const c_void {
    let ran = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: wasm3 passes the userdata given at link time: a live `Slot`.
        let slot = unsafe { &*((*context).userdata as *const Slot<'_>) };
        let mut args = [0u64; MAX_ARGS];
        let count = slot.params.min(MAX_ARGS);
        // SAFETY: wasm3 lays out `results` result slots, then `params` argument slots.
        let slots = unsafe { std::slice::from_raw_parts(stack.add(slot.results), count) };
        args[..count].copy_from_slice(slots);
        let mut size = 0u32;
        // SAFETY: the runtime is the one running this call; the memory may move on
        // `memory.grow`, so it is fetched on every call and not kept.
        let base = unsafe { sys::m3_GetMemory(runtime, &mut size, 0) };
        let memory: &mut [u8] = if base.is_null() {
            &mut []
        } else {
            // SAFETY: `size` bytes at `base` are the guest's memory, and nothing else
            // touches them while the guest waits for this call.
            unsafe { std::slice::from_raw_parts_mut(base, size as usize) }
        };
        // SAFETY: the host outlives the instance, and wasm3 runs one call at a time.
        let host = unsafe { &mut *slot.host };
        let result = host.call(slot.import, memory, &args[..count])?;
        if let (Some(value), 1) = (result, slot.results) {
            // SAFETY: the first slot is the result slot; arguments were read above.
            unsafe { *stack = value };
        }
        Ok::<(), wasmux_guard::GuestMustEnd>(())
    }));
    match ran {
        Ok(Ok(())) => ptr::null(),
        _ => HOST_STOP.as_ptr().cast(),
    }
}
