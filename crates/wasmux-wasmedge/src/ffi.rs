//! The backend's only unsafe code: a safe wrapper over the parts of WasmEdge's C API
//! (through `wasmedge-sys`'s raw bindings) the runner needs.
//!
//! Ownership follows WasmEdge's rules: a [`Config`] is copied by whatever is created
//! from it; an [`AstModule`] is immutable once validated and only read by
//! instantiation, so it is shared between runs and threads; an [`Instance`] owns its
//! executor, store, import modules and module instance, and frees them in reverse
//! order.
//!
//! Host functions all go through one trampoline. Each import gets a [`Slot`] (its
//! number, arity and the [`GuardedHost`] to run) whose address is WasmEdge's data
//! pointer for that function; the trampoline reads the arguments, hands the guest's
//! memory over as a byte slice and writes the result back. A host call that must end
//! the guest returns WasmEdge's `Terminate`; the reason stays with the `GuardedHost`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_void};
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::ptr;

use wasmedge_sys::ffi as sys;
use wasmux_core::TrapKind;
use wasmux_guard::{Ended, GuardedHost, Import, ValType};

/// WasmEdge's result code for a host function that ended the guest.
const TERMINATED: u32 = 0x01;
/// The most arguments a preview1 function takes (path_open) is 9.
const MAX_ARGS: usize = 16;
const WASM_PAGE: u64 = 65536;

/// Silences WasmEdge's own logging, once per process: it writes every trap to the
/// process's stderr, which may be a guest's; wasmux reports traps itself.
pub(crate) fn silence_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: a global setting with no arguments.
    ONCE.call_once(|| unsafe { sys::WasmEdge_LogOff() });
}

/// The library's version string, such as `0.14.1`.
pub(crate) fn library_version() -> String {
    // SAFETY: returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::WasmEdge_VersionGet()) }
        .to_string_lossy()
        .into_owned()
}

/// An error from WasmEdge: its code and message.
fn failure(result: sys::WasmEdge_Result) -> Option<(u32, String)> {
    // SAFETY: plain accessors of a value type; the message is a static string.
    unsafe {
        if sys::WasmEdge_ResultOK(result) {
            return None;
        }
        let message = CStr::from_ptr(sys::WasmEdge_ResultGetMessage(result))
            .to_string_lossy()
            .into_owned();
        Some((sys::WasmEdge_ResultGetCode(result), message))
    }
}

fn check(result: sys::WasmEdge_Result) -> Result<(), String> {
    failure(result).map_or(Ok(()), |(_, message)| Err(message))
}

/// A string WasmEdge reads during the call it is passed to (it copies what it keeps).
fn wasmedge_str(s: &str) -> sys::WasmEdge_String {
    // SAFETY: wraps the buffer without copying; valid while `s` is.
    unsafe { sys::WasmEdge_StringCreateByBuffer(s.as_ptr().cast(), s.len() as u32) }
}

fn bytes(b: &[u8]) -> Result<sys::WasmEdge_Bytes, String> {
    let length = u32::try_from(b.len()).map_err(|_| "the module is over 4 GiB")?;
    Ok(sys::WasmEdge_Bytes {
        Length: length,
        Buf: b.as_ptr(),
    })
}

/// How WasmEdge runs the code it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Execution {
    /// Always the interpreter, even for a module that carries an AOT section: that
    /// section is native code from the image, and never trusted.
    Interpreter,
    /// Native code wasmux compiled itself with WasmEdge's LLVM compiler.
    Aot,
}

/// A WasmEdge configuration (proposals, execution mode).
pub(crate) struct Config(*mut sys::WasmEdge_ConfigureContext);

// SAFETY: the configuration is only read once built (creating contexts copies it).
unsafe impl Send for Config {}
// SAFETY: as above.
unsafe impl Sync for Config {}

impl Config {
    pub(crate) fn new(execution: Execution) -> Result<Self, String> {
        // SAFETY: plain constructor; null means allocation failed.
        let config = unsafe { sys::WasmEdge_ConfigureCreate() };
        if config.is_null() {
            return Err("WasmEdge could not allocate a configuration".into());
        }
        // SAFETY: the configuration is valid.
        unsafe {
            sys::WasmEdge_ConfigureSetForceInterpreter(config, execution == Execution::Interpreter);
            sys::WasmEdge_ConfigureCompilerSetOptimizationLevel(
                config,
                sys::WasmEdge_CompilerOptimizationLevel_O2,
            );
            // A shared library, not a universal module: 0.14's universal module loses
            // any module whose native code calls a libm function whose name starts
            // with `f` (LLVM turns some f64.min/max into `fmin`/`fmax`): its code
            // table then counts the imports too, the loader finds the counts differ
            // and silently interprets, and the copied code has no relocations for
            // that call anyway. A shared library is loaded by the dynamic linker,
            // by symbol, and fails loudly if anything is missing.
            sys::WasmEdge_ConfigureCompilerSetOutputFormat(
                config,
                sys::WasmEdge_CompilerOutputFormat_Native,
            );
        }
        Ok(Config(config))
    }

    /// Compiles `wasm` to a shared library of native code (with the module inside)
    /// at `output`.
    pub(crate) fn compile(&self, wasm: &[u8], output: &Path) -> Result<(), String> {
        /// WasmEdge 0.14's compiler is not reentrant: two compiles at once on two
        /// threads produced a corrupt object, and its in-process lld then ended the
        /// whole process ("unsupported e_machine value: 0", exit 1). One at a time.
        static ONE_COMPILE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let path = CString::new(output.as_os_str().as_encoded_bytes())
            .map_err(|_| "the output path contains a NUL byte")?;
        let _one = ONE_COMPILE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // SAFETY: the configuration is valid; null means allocation failed.
        let compiler = unsafe { sys::WasmEdge_CompilerCreate(self.0) };
        if compiler.is_null() {
            return Err("WasmEdge could not create its AOT compiler".into());
        }
        // SAFETY: the compiler, input and path are valid for the call.
        let result = unsafe {
            sys::WasmEdge_CompilerCompileFromBytes(compiler, bytes(wasm)?, path.as_ptr())
        };
        // SAFETY: created above, freed once.
        unsafe { sys::WasmEdge_CompilerDelete(compiler) };
        check(result)
    }

    /// Parses and validates a module.
    pub(crate) fn load(&self, wasm: &[u8]) -> Result<AstModule, String> {
        let input = bytes(wasm)?;
        // SAFETY: the loader and the input are valid for the call.
        self.parse_and_validate(None, |loader, ast| unsafe {
            sys::WasmEdge_LoaderParseFromBytes(loader, ast, input)
        })
    }

    /// Loads a shared library of [`compile`](Self::compile)'s and validates the module
    /// inside it. The library is dlopened from a memfd (no file system: a container's
    /// may have no writable or executable place), which the module keeps open, so
    /// that its `/proc/self/fd` name is never reused for another library while this
    /// one is loaded (the dynamic linker would take it for the same).
    pub(crate) fn load_library(&self, library: &[u8]) -> Result<AstModule, String> {
        use rustix::fs::{MemfdFlags, memfd_create};
        use std::io::Write;
        // Executable on purpose (`MFD_EXEC`): where `vm.memfd_noexec` makes memfds
        // noexec by default, dlopen's executable mapping would fail. Kernels before
        // 6.3 know no such flag (EINVAL) and make every memfd executable.
        let name = "wasmux-wasmedge-aot";
        let fd = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::EXEC)
            .or_else(|e| match e {
                rustix::io::Errno::INVAL => memfd_create(name, MemfdFlags::CLOEXEC),
                other => Err(other),
            })
            .map_err(|e| format!("an executable memfd for the native code: {e}"))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(library)
            .map_err(|e| format!("writing the native code: {e}"))?;
        let path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|_| "a descriptor's path contains a NUL byte")?;
        // SAFETY: the loader and the path are valid for the call.
        self.parse_and_validate(Some(file), |loader, ast| unsafe {
            sys::WasmEdge_LoaderParseFromFile(loader, ast, path.as_ptr())
        })
    }

    fn parse_and_validate(
        &self,
        library: Option<std::fs::File>,
        parse: impl FnOnce(
            *mut sys::WasmEdge_LoaderContext,
            *mut *mut sys::WasmEdge_ASTModuleContext,
        ) -> sys::WasmEdge_Result,
    ) -> Result<AstModule, String> {
        // SAFETY: the configuration is valid; each context is freed below.
        unsafe {
            let loader = sys::WasmEdge_LoaderCreate(self.0);
            let validator = sys::WasmEdge_ValidatorCreate(self.0);
            let mut ast = ptr::null_mut();
            let result = if loader.is_null() || validator.is_null() {
                Err("WasmEdge could not allocate a loader".to_owned())
            } else {
                check(parse(loader, &mut ast))
                    .and_then(|()| check(sys::WasmEdge_ValidatorValidate(validator, ast)))
            };
            sys::WasmEdge_LoaderDelete(loader);
            sys::WasmEdge_ValidatorDelete(validator);
            let module = AstModule {
                ast,
                _library: library,
            };
            result.map(|()| module)
        }
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        // SAFETY: created in `new`, freed once.
        unsafe { sys::WasmEdge_ConfigureDelete(self.0) };
    }
}

/// A parsed, validated module.
pub(crate) struct AstModule {
    ast: *mut sys::WasmEdge_ASTModuleContext,
    /// The memfd the native code was loaded from, closed after the module is deleted.
    _library: Option<std::fs::File>,
}

// SAFETY: immutable once validated; instantiation only reads it (a const pointer).
unsafe impl Send for AstModule {}
// SAFETY: as above.
unsafe impl Sync for AstModule {}

impl Drop for AstModule {
    fn drop(&mut self) {
        if !self.ast.is_null() {
            // SAFETY: created by the loader, freed once.
            unsafe { sys::WasmEdge_ASTModuleDelete(self.ast) };
        }
    }
}

struct Slot<'h> {
    host: *mut GuardedHost<'h>,
    import: usize,
    params: Vec<ValType>,
    result: Option<ValType>,
}

/// A module instantiated in a store of its own, with the host functions linked.
/// Public only to be the `GuardedCode::Instance` of this engine; the module is private.
pub struct Instance<'a, 'h> {
    executor: *mut sys::WasmEdge_ExecutorContext,
    store: *mut sys::WasmEdge_StoreContext,
    imports: Vec<*mut sys::WasmEdge_ModuleInstanceContext>,
    instance: *mut sys::WasmEdge_ModuleInstanceContext,
    /// Data of the host functions; WasmEdge holds their addresses, so each is boxed.
    #[allow(clippy::vec_box)]
    _slots: Vec<Box<Slot<'h>>>,
    _borrows: PhantomData<(&'a AstModule, &'a mut GuardedHost<'h>)>,
}

fn val_type(t: &ValType) -> sys::WasmEdge_ValType {
    // SAFETY: plain value constructors.
    unsafe {
        match t {
            ValType::I32 => sys::WasmEdge_ValTypeGenI32(),
            ValType::I64 => sys::WasmEdge_ValTypeGenI64(),
        }
    }
}

impl<'a, 'h> Instance<'a, 'h> {
    /// Links `imports` to `host` (grouped into one import module per module name) and
    /// instantiates `module`, running its start function.
    pub(crate) fn new(
        config: &Config,
        module: &'a AstModule,
        imports: &[Import],
        host: &'a mut GuardedHost<'h>,
    ) -> Result<Self, Ended> {
        let error = |message: &str| Ended::Trap(TrapKind::Other, message.to_owned());
        // SAFETY: plain constructors; checked for null below.
        let (executor, store) = unsafe {
            (
                sys::WasmEdge_ExecutorCreate(config.0, ptr::null_mut()),
                sys::WasmEdge_StoreCreate(),
            )
        };
        let mut instance = Instance {
            executor,
            store,
            imports: Vec::new(),
            instance: ptr::null_mut(),
            _slots: Vec::new(),
            _borrows: PhantomData,
        };
        if executor.is_null() || store.is_null() {
            return Err(error("WasmEdge could not allocate an executor"));
        }
        let host: *mut GuardedHost<'h> = host;
        let mut names: Vec<&str> = imports.iter().map(|i| i.module).collect();
        names.dedup();
        for name in names {
            // SAFETY: the name is copied by WasmEdge.
            let import_module = unsafe { sys::WasmEdge_ModuleInstanceCreate(wasmedge_str(name)) };
            if import_module.is_null() {
                return Err(error("WasmEdge could not allocate an import module"));
            }
            instance.imports.push(import_module);
            for (number, import) in imports.iter().enumerate().filter(|(_, i)| i.module == name) {
                let slot = Box::new(Slot {
                    host,
                    import: number,
                    params: import.params.to_vec(),
                    result: import.result,
                });
                let params: Vec<_> = import.params.iter().map(val_type).collect();
                let results: Vec<_> = import.result.iter().map(val_type).collect();
                // SAFETY: the type is copied into the function instance and freed
                // here; the module instance takes ownership of the function; the
                // slot lives as long as the instance.
                unsafe {
                    let ty = sys::WasmEdge_FunctionTypeCreate(
                        params.as_ptr(),
                        params.len() as u32,
                        results.as_ptr(),
                        results.len() as u32,
                    );
                    let function = sys::WasmEdge_FunctionInstanceCreate(
                        ty,
                        Some(trampoline),
                        &*slot as *const Slot<'h> as *mut c_void,
                        0,
                    );
                    sys::WasmEdge_FunctionTypeDelete(ty);
                    if function.is_null() {
                        return Err(error("WasmEdge could not create a host function"));
                    }
                    sys::WasmEdge_ModuleInstanceAddFunction(
                        import_module,
                        wasmedge_str(import.name),
                        function,
                    );
                }
                instance._slots.push(slot);
            }
            // SAFETY: the executor, store and module are valid; the store refers to
            // the module, which outlives it (freed after it in `drop`).
            check(unsafe { sys::WasmEdge_ExecutorRegisterImport(executor, store, import_module) })
                .map_err(|e| error(&format!("registering {name}: {e}")))?;
        }
        // SAFETY: the AST module outlives the instance (lifetime 'a).
        let result = unsafe {
            sys::WasmEdge_ExecutorInstantiate(executor, &mut instance.instance, store, module.ast)
        };
        // A start function may have run and trapped, or been ended by a host call.
        match ended(result) {
            None => Ok(instance),
            Some(call) => Err(call),
        }
    }

    /// Calls the exported function `name`, which must take no parameters.
    pub(crate) fn call(&mut self, name: &str) -> Result<Ended, String> {
        // SAFETY: the instance is valid; the function lives as long as it.
        let function =
            unsafe { sys::WasmEdge_ModuleInstanceFindFunction(self.instance, wasmedge_str(name)) };
        if function.is_null() {
            return Err("no such exported function".into());
        }
        // SAFETY: the function and its type are valid as long as the instance.
        let (params, results) = unsafe {
            let ty = sys::WasmEdge_FunctionInstanceGetFunctionType(function);
            (
                sys::WasmEdge_FunctionTypeGetParametersLength(ty),
                sys::WasmEdge_FunctionTypeGetReturnsLength(ty),
            )
        };
        if params != 0 {
            return Err("it takes parameters".into());
        }
        // SAFETY: the returns buffer has room for every result.
        let result = unsafe {
            let mut returns = vec![sys::WasmEdge_ValueGenI32(0); results as usize];
            sys::WasmEdge_ExecutorInvoke(
                self.executor,
                function,
                ptr::null(),
                0,
                returns.as_mut_ptr(),
                results,
            )
        };
        Ok(ended(result).unwrap_or(Ended::Returned))
    }
}

/// How a call or instantiation that did not simply succeed ended.
fn ended(result: sys::WasmEdge_Result) -> Option<Ended> {
    // SAFETY: a plain accessor of a value type.
    if unsafe { sys::WasmEdge_ResultGetCode(result) } == TERMINATED {
        return Some(Ended::HostStopped);
    }
    failure(result).map(|(code, message)| Ended::Trap(crate::outcome::trap_kind(code), message))
}

impl Drop for Instance<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: each was created by this instance and is freed once, users first:
        // the instance, then the store (it refers to the import modules), then them.
        unsafe {
            if !self.instance.is_null() {
                sys::WasmEdge_ModuleInstanceDelete(self.instance);
            }
            if !self.store.is_null() {
                sys::WasmEdge_StoreDelete(self.store);
            }
            for import in &self.imports {
                sys::WasmEdge_ModuleInstanceDelete(*import);
            }
            if !self.executor.is_null() {
                sys::WasmEdge_ExecutorDelete(self.executor);
            }
        }
    }
}

/// Every host function's entry point: see the module docs.
unsafe extern "C" fn trampoline(
    data: *mut c_void,
    frame: *const sys::WasmEdge_CallingFrameContext,
    params: *const sys::WasmEdge_Value,
    returns: *mut sys::WasmEdge_Value,
) -> sys::WasmEdge_Result {
    let ran = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: WasmEdge passes the data given at creation: a live `Slot`.
        let slot = unsafe { &*(data as *const Slot<'_>) };
        let mut args = [0u64; MAX_ARGS];
        let count = slot.params.len().min(MAX_ARGS);
        for (i, ty) in slot.params.iter().take(count).enumerate() {
            // SAFETY: WasmEdge passes one value per declared parameter.
            let value = unsafe { *params.add(i) };
            // SAFETY: plain accessors of the value's declared type.
            args[i] = unsafe {
                match ty {
                    ValType::I32 => sys::WasmEdge_ValueGetI32(value) as u32 as u64,
                    ValType::I64 => sys::WasmEdge_ValueGetI64(value) as u64,
                }
            };
        }
        // SAFETY: the frame is the calling one; memory 0 may be absent. The memory
        // may move on `memory.grow`, so it is fetched on every call and not kept.
        let memory: &mut [u8] = unsafe {
            let memory = sys::WasmEdge_CallingFrameGetMemoryInstance(frame, 0);
            let size = if memory.is_null() {
                0
            } else {
                (u64::from(sys::WasmEdge_MemoryInstanceGetPageSize(memory)) * WASM_PAGE)
                    .min(u64::from(u32::MAX)) as u32
            };
            let base = if size == 0 {
                ptr::null_mut()
            } else {
                sys::WasmEdge_MemoryInstanceGetPointer(memory, 0, size)
            };
            if base.is_null() {
                &mut []
            } else {
                // SAFETY: `size` bytes at `base` are the guest's memory, and nothing
                // else touches them while the guest waits for this call.
                std::slice::from_raw_parts_mut(base, size as usize)
            }
        };
        // SAFETY: the host outlives the instance, and a run makes one call at a time.
        let host = unsafe { &mut *slot.host };
        let result = host.call(slot.import, memory, &args[..count])?;
        if let (Some(value), Some(ty)) = (result, slot.result) {
            // SAFETY: one return slot per declared result, of the declared type.
            unsafe {
                *returns = match ty {
                    ValType::I32 => sys::WasmEdge_ValueGenI32(value as u32 as i32),
                    ValType::I64 => sys::WasmEdge_ValueGenI64(value as i64),
                }
            };
        }
        Ok::<(), wasmux_guard::GuestMustEnd>(())
    }));
    sys::WasmEdge_Result {
        Code: match ran {
            Ok(Ok(())) => 0,
            _ => TERMINATED,
        },
    }
}

/// How many instructions WasmEdge's interpreter executes to instantiate `module`
/// (which must import nothing) and call its export `entry` (no parameters, no
/// results) with the statistics of a configuration for `execution`. Native code
/// counts nothing: the timing-free signal that an AOT module did not fall back to
/// the interpreter.
#[cfg(test)]
pub(crate) fn interpreted_instructions(
    execution: Execution,
    module: &AstModule,
    entry: &str,
) -> Result<u64, String> {
    let config = Config::new(execution)?;
    // SAFETY: every context is created here, checked, and freed before returning;
    // the AST outlives the calls.
    unsafe {
        sys::WasmEdge_ConfigureStatisticsSetInstructionCounting(config.0, true);
        let statistics = sys::WasmEdge_StatisticsCreate();
        let executor = sys::WasmEdge_ExecutorCreate(config.0, statistics);
        let store = sys::WasmEdge_StoreCreate();
        let mut instance = ptr::null_mut();
        let result = if statistics.is_null() || executor.is_null() || store.is_null() {
            Err("WasmEdge could not allocate an executor".to_owned())
        } else {
            check(sys::WasmEdge_ExecutorInstantiate(
                executor,
                &mut instance,
                store,
                module.ast,
            ))
            .and_then(|()| {
                let function =
                    sys::WasmEdge_ModuleInstanceFindFunction(instance, wasmedge_str(entry));
                if function.is_null() {
                    return Err(format!("no export {entry}"));
                }
                check(sys::WasmEdge_ExecutorInvoke(
                    executor,
                    function,
                    ptr::null(),
                    0,
                    ptr::null_mut(),
                    0,
                ))
            })
            .map(|()| sys::WasmEdge_StatisticsGetInstrCount(statistics))
        };
        if !instance.is_null() {
            sys::WasmEdge_ModuleInstanceDelete(instance);
        }
        sys::WasmEdge_StoreDelete(store);
        sys::WasmEdge_ExecutorDelete(executor);
        sys::WasmEdge_StatisticsDelete(statistics);
        result
    }
}
