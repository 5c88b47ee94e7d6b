//! The backend's only unsafe code: a safe wrapper over WAMR's C API (through
//! `wamrx-sys`), covering exactly what the runner needs.
//!
//! WAMR's runtime and its table of host functions are process-global: [`runtime`] sets
//! both up once, and they live until the process ends (WAMR keeps pointers into the
//! host-function table, and tearing the runtime down under a concurrent run would pull
//! it from under that run). A [`Module`] is loaded once and instantiated by many runs on
//! many threads; an [`Instance`] and its execution environment belong to one run on one
//! thread, inside a [`ThreadEnv`].
//!
//! Every import goes through one trampoline. WAMR hands it the import's number (its
//! attachment) and the run's [`GuardedHost`] (the execution environment's user data);
//! the trampoline passes the guest's memory over as a byte slice and writes the result
//! back. A host call that must end the guest sets [`HOST_STOP`] as the instance's
//! exception, which WAMR's interpreter checks as soon as the import returns; the reason
//! stays with the [`GuardedHost`].
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_void};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, OnceLock, PoisonError};

use wamrx_sys as sys;
use wasmux_guard::{Ended, GuardedHost, GuestMustEnd, Import, ValType, imports};

use crate::outcome::trap_kind;

/// The exception a host call sets to end the guest; recognised by its text.
const HOST_STOP: &CStr = c"wasmux: a host call ended the guest";

/// WAMR's error messages fit in this many bytes.
const ERROR_BUF: usize = 256;

/// The most argument slots a preview1 function takes (path_open) is 9.
const MAX_ARGS: usize = 16;

/// Every import a guarded module may link, in [`imports`] order: the trampoline's
/// table, by attachment number.
fn table() -> &'static [Import] {
    static TABLE: OnceLock<Vec<Import>> = OnceLock::new();
    TABLE.get_or_init(imports)
}

/// Sets up WAMR's process-wide runtime and registers the host functions, once.
pub(crate) fn runtime() -> Result<(), String> {
    static RUNTIME: OnceLock<Result<(), String>> = OnceLock::new();
    RUNTIME.get_or_init(init_runtime).clone()
}

fn init_runtime() -> Result<(), String> {
    let mut args = sys::RuntimeInitArgs {
        mem_alloc_type: sys::Alloc_With_System_Allocator,
        running_mode: sys::Mode_Interp,
        ..Default::default()
    };
    // SAFETY: the arguments are valid for the call; WAMR copies what it keeps.
    if !unsafe { sys::wasm_runtime_full_init(&mut args) } {
        return Err("WAMR could not initialise its runtime".into());
    }
    // WAMR logs to the process's stdout, which may be the guest's: errors reach the
    // caller as values instead.
    // SAFETY: sets a global level.
    unsafe { sys::wasm_runtime_set_log_level(sys::WASM_LOG_LEVEL_FATAL) };
    let mut modules: Vec<&'static str> = table().iter().map(|import| import.module).collect();
    modules.dedup();
    for module in modules {
        register(module)?;
    }
    Ok(())
}

/// Registers the imports of one module name. WAMR keeps (and sorts in place) the
/// symbol array and the strings it points to for the life of the process: they are
/// leaked on purpose, once.
fn register(module: &'static str) -> Result<(), String> {
    let leak = |text: String| -> Result<*const c_char, String> {
        Ok(CString::new(text)
            .map_err(|_| "a host function name contains a NUL byte")?
            .into_raw()
            .cast_const())
    };
    let mut symbols = Vec::new();
    for (number, import) in table().iter().enumerate() {
        if import.module != module {
            continue;
        }
        symbols.push(sys::NativeSymbol {
            symbol: leak(import.name.to_owned())?,
            func_ptr: trampoline as *mut c_void,
            signature: leak(signature(import))?,
            attachment: number as *mut c_void,
        });
    }
    let count = symbols.len() as u32;
    let symbols = Box::leak(symbols.into_boxed_slice());
    // SAFETY: the name, symbols and strings are leaked, so they outlive the runtime.
    let registered = unsafe {
        sys::wasm_runtime_register_natives_raw(
            leak(module.to_owned())?,
            symbols.as_mut_ptr(),
            count,
        )
    };
    registered
        .then_some(())
        .ok_or_else(|| format!("WAMR refused the host functions of {module}"))
}

/// WAMR's signature string for an import, such as `(iIi)i`. Plain integers only: the
/// host checks every guest address against the memory slice itself.
fn signature(import: &Import) -> String {
    let letter = |t: &ValType| match t {
        ValType::I32 => 'i',
        ValType::I64 => 'I',
    };
    let params: String = import.params.iter().map(letter).collect();
    let result = import.result.as_ref().map(letter).map(String::from);
    format!("({params}){}", result.unwrap_or_default())
}

/// The text of a NUL-terminated error buffer.
fn message(buffer: &[c_char]) -> String {
    let bytes: Vec<u8> = buffer
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// WAMR's version, as its library reports it.
#[cfg(test)]
pub(crate) fn version() -> (u32, u32, u32) {
    let (mut major, mut minor, mut patch) = (0, 0, 0);
    // SAFETY: three valid out-pointers.
    unsafe { sys::wasm_runtime_get_version(&mut major, &mut minor, &mut patch) };
    (major, minor, patch)
}

/// WAMR's per-thread state, for as long as a run's thread uses WAMR.
pub(crate) struct ThreadEnv(PhantomData<*const ()>);

impl ThreadEnv {
    /// Prepares this thread (signal handling, where WAMR is built to use it).
    pub(crate) fn new() -> Result<Self, String> {
        // SAFETY: no arguments; paired with the destroy in `drop`.
        if unsafe { sys::wasm_runtime_init_thread_env() } {
            Ok(ThreadEnv(PhantomData))
        } else {
            Err("WAMR could not prepare the run's thread".into())
        }
    }
}

impl Drop for ThreadEnv {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` on this thread (the type is not Send).
        unsafe { sys::wasm_runtime_destroy_thread_env() };
    }
}

/// A module WAMR has loaded (parsed, validated, translated for its fast interpreter).
pub(crate) struct Module {
    raw: sys::wasm_module_t,
    /// WAMR keeps pointers into the bytes it loaded.
    _bytes: Box<[u8]>,
    /// Instantiation touches the module's shared state: one at a time.
    instantiating: Mutex<()>,
}

// SAFETY: a loaded module is read-only to WAMR except while instantiating, which the
// mutex serialises; instances made from it are each used by one thread.
unsafe impl Send for Module {}
// SAFETY: as above.
unsafe impl Sync for Module {}

impl Module {
    /// Loads `wasm`; imports are resolved against the registered host functions.
    pub(crate) fn load(wasm: &[u8]) -> Result<Self, String> {
        runtime()?;
        let mut bytes: Box<[u8]> = wasm.into();
        let size = u32::try_from(bytes.len()).map_err(|_| "the module is over 4 GiB")?;
        let mut error = [0 as c_char; ERROR_BUF];
        // SAFETY: the buffer lives as long as the module (it is stored beside it).
        let raw = unsafe {
            sys::wasm_runtime_load(
                bytes.as_mut_ptr(),
                size,
                error.as_mut_ptr(),
                ERROR_BUF as u32,
            )
        };
        if raw.is_null() {
            return Err(message(&error));
        }
        Ok(Module {
            raw,
            _bytes: bytes,
            instantiating: Mutex::new(()),
        })
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: loaded in `load`; every instance borrows the module, so none is left.
        unsafe { sys::wasm_runtime_unload(self.raw) };
    }
}

/// One instance of a module with its execution environment, for one run's thread.
pub(crate) struct Instance<'m, 'h> {
    raw: sys::wasm_module_inst_t,
    exec_env: sys::wasm_exec_env_t,
    /// The module outlives the instance; WAMR calls into the host during calls.
    _borrows: PhantomData<(&'m Module, &'m mut GuardedHost<'h>)>,
}

impl<'m, 'h> Instance<'m, 'h> {
    /// Instantiates `module` with a WAMR stack (frames and operands) of `stack` bytes,
    /// its imports answered by `host`.
    pub(crate) fn new(
        module: &'m Module,
        stack: u32,
        host: &'m mut GuardedHost<'h>,
    ) -> Result<Self, String> {
        let args = sys::InstantiationArgs {
            default_stack_size: stack,
            host_managed_heap_size: 0,
            max_memory_pages: 0,
        };
        let mut error = [0 as c_char; ERROR_BUF];
        let raw = {
            let _one = module
                .instantiating
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // SAFETY: the module is loaded; the arguments are valid for the call.
            unsafe {
                sys::wasm_runtime_instantiate_ex(
                    module.raw,
                    &args,
                    error.as_mut_ptr(),
                    ERROR_BUF as u32,
                )
            }
        };
        if raw.is_null() {
            return Err(message(&error));
        }
        // SAFETY: a live instance.
        let exec_env = unsafe { sys::wasm_runtime_create_exec_env(raw, stack) };
        if exec_env.is_null() {
            // SAFETY: made above, freed once.
            unsafe { sys::wasm_runtime_deinstantiate(raw) };
            return Err("WAMR could not allocate the run's stack".into());
        }
        let host: *mut GuardedHost<'h> = host;
        // SAFETY: the host outlives the instance (its borrow is held by `_borrows`).
        unsafe { sys::wasm_runtime_set_user_data(exec_env, host.cast()) };
        Ok(Instance {
            raw,
            exec_env,
            _borrows: PhantomData,
        })
    }

    /// Calls the exported function `entry`, which takes no arguments.
    pub(crate) fn call(&mut self, entry: &str) -> Result<Ended, String> {
        let name = CString::new(entry).map_err(|_| "the name contains a NUL byte")?;
        // SAFETY: a live instance and a NUL-terminated name.
        let function = unsafe { sys::wasm_runtime_lookup_function(self.raw, name.as_ptr()) };
        if function.is_null() {
            return Err("the module exports no such function".into());
        }
        // SAFETY: a function of this instance.
        let (params, results) = unsafe {
            (
                sys::wasm_func_get_param_count(function, self.raw),
                sys::wasm_func_get_result_count(function, self.raw),
            )
        };
        if params != 0 {
            return Err(format!("it takes {params} parameters, an entry takes none"));
        }
        // Results come back in 32-bit cells, two for a 64-bit value.
        let mut cells = vec![0u32; 2 * results.max(1) as usize];
        // SAFETY: a live instance; WAMR does not clear an earlier exception itself.
        unsafe { sys::wasm_runtime_clear_exception(self.raw) };
        // SAFETY: the environment belongs to this instance and thread; `cells` holds
        // every result cell.
        let returned =
            unsafe { sys::wasm_runtime_call_wasm(self.exec_env, function, 0, cells.as_mut_ptr()) };
        if returned {
            return Ok(Ended::Returned);
        }
        // SAFETY: a live instance; the exception is a NUL-terminated string it owns.
        let exception = unsafe { sys::wasm_runtime_get_exception(self.raw) };
        let text = if exception.is_null() {
            String::from("WAMR reported a failure without a message")
        } else {
            // SAFETY: non-null, NUL-terminated, alive until the next call.
            unsafe { CStr::from_ptr(exception) }
                .to_string_lossy()
                .into_owned()
        };
        let text = text.strip_prefix("Exception: ").unwrap_or(&text);
        Ok(if text.as_bytes() == HOST_STOP.to_bytes() {
            Ended::HostStopped
        } else {
            Ended::Trap(trap_kind(text), text.to_owned())
        })
    }
}

impl Drop for Instance<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: made in `new`, freed once, environment first.
        unsafe {
            sys::wasm_runtime_destroy_exec_env(self.exec_env);
            sys::wasm_runtime_deinstantiate(self.raw);
        }
    }
}

/// The guest's memory 0 as it is now (it may move on `memory.grow`, so it is looked up
/// on every host call and not kept).
///
/// # Safety
/// `instance` is live, and nothing else touches its memory while the slice is used.
unsafe fn guest_memory<'g>(instance: sys::wasm_module_inst_t) -> &'g mut [u8] {
    // SAFETY: a live instance (the caller's promise).
    let memory = unsafe { sys::wasm_runtime_get_default_memory(instance) };
    if memory.is_null() {
        return &mut [];
    }
    // SAFETY: a live memory of that instance.
    let (pages, page_size, base) = unsafe {
        (
            sys::wasm_memory_get_cur_page_count(memory),
            sys::wasm_memory_get_bytes_per_page(memory),
            sys::wasm_memory_get_base_address(memory).cast::<u8>(),
        )
    };
    let size = usize::try_from(pages.saturating_mul(page_size)).unwrap_or(0);
    if base.is_null() || size == 0 {
        return &mut [];
    }
    // SAFETY: `size` bytes at `base` are the guest's memory, and the guest waits for
    // this host call.
    unsafe { std::slice::from_raw_parts_mut(base, size) }
}

/// Every import's entry point: WAMR's raw calling convention, arguments in 64-bit
/// slots and the result written over the first.
unsafe extern "C" fn trampoline(exec_env: sys::wasm_exec_env_t, slots: *mut u64) {
    // SAFETY: WAMR passes the calling environment, whose instance is running.
    let instance = unsafe { sys::wasm_runtime_get_module_inst(exec_env) };
    let ran = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the attachment is the import's number, set at registration.
        let number = unsafe { sys::wasm_runtime_get_function_attachment(exec_env) } as usize;
        let import = table().get(number).ok_or(GuestMustEnd)?;
        let count = import.params.len().min(MAX_ARGS);
        let mut args = [0u64; MAX_ARGS];
        // SAFETY: WAMR lays out one slot per parameter, and at least one slot always.
        let slots = unsafe { std::slice::from_raw_parts_mut(slots, count.max(1)) };
        args[..count].copy_from_slice(&slots[..count]);
        // SAFETY: the user data is the run's host, set in `Instance::new`, alive for
        // the instance; the guest waits, so nothing else touches host or memory.
        let host = unsafe { &mut *sys::wasm_runtime_get_user_data(exec_env).cast::<GuardedHost>() };
        // SAFETY: as above.
        let memory = unsafe { guest_memory(instance) };
        if let (Some(value), Some(_)) = (host.call(number, memory, &args[..count])?, import.result)
        {
            slots[0] = value;
        }
        Ok::<(), GuestMustEnd>(())
    }));
    if !matches!(ran, Ok(Ok(()))) {
        // SAFETY: a live instance; WAMR copies the message.
        unsafe { sys::wasm_runtime_set_exception(instance, HOST_STOP.as_ptr()) };
    }
}
