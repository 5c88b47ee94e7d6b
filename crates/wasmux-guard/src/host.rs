//! The host side of a guarded run: one table of imports (WASI, then the guards) and the
//! state that answers them.

use wasmux_core::memory::TABLE_ELEMENT_BYTES;
use wasmux_core::{MemoryBudget, RawOutcome, RawRun, Result, RunControl, RunSpec, TrapKind};
use wasmux_wasi_preview1::{FUNCTIONS, MODULE as WASI_MODULE, Stop, ValType, WasiHost};

use crate::instrument::{
    DEEP, DENIED_DELTA, FUEL, GROW, GROW_TABLE, GUARD_MODULE, InitialSize, POLL,
};

const WASM_PAGE: u64 = 65536;

/// One host function an instrumented module may import; its position in [`imports`]
/// is the number passed to [`GuardedHost::call`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Import module name.
    pub module: &'static str,
    /// Import field name.
    pub name: &'static str,
    /// Parameter types, in order.
    pub params: &'static [ValType],
    /// The result type, if any.
    pub result: Option<ValType>,
}

/// Every import a guarded run links: the WASI functions, then `poll`, `grow`, `deep`,
/// `grow_table`.
pub fn imports() -> Vec<Import> {
    let mut imports: Vec<Import> = FUNCTIONS
        .iter()
        .map(|f| Import {
            module: WASI_MODULE,
            name: f.name,
            params: f.params,
            result: f.returns_errno.then_some(ValType::I32),
        })
        .collect();
    let guard = |name, params, result| Import {
        module: GUARD_MODULE,
        name,
        params,
        result,
    };
    imports.push(guard(POLL, &[], Some(ValType::I32)));
    imports.push(guard(GROW, &[ValType::I32], Some(ValType::I32)));
    imports.push(guard(DEEP, &[], None));
    imports.push(guard(GROW_TABLE, &[ValType::I32], Some(ValType::I32)));
    imports
}

/// Refuses imports nothing here provides, naming them, before any engine links the
/// module (wasm3 itself would only trap once the guest called one).
pub(crate) fn check_imports(bytes: &[u8], engine: &str) -> std::result::Result<(), String> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let wasmparser::Payload::ImportSection(section) = payload.map_err(|e| e.to_string())?
        else {
            continue;
        };
        for import in section.into_imports() {
            let import = import.map_err(|e| e.to_string())?;
            let known = import.module == WASI_MODULE
                && matches!(import.ty, wasmparser::TypeRef::Func(_))
                && FUNCTIONS.iter().any(|f| f.name == import.name);
            if !known {
                return Err(format!(
                    "unknown import {}::{} ({engine} provides WASI preview1 functions only)",
                    import.module, import.name
                ));
            }
        }
    }
    Ok(())
}

/// How the engine's call into the guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The entry function returned.
    Returned,
    /// A host call ended the guest (the [`GuardedHost`] knows why).
    HostStopped,
    /// The engine trapped.
    Trap(TrapKind, String),
}

/// Why a host call ended the guest.
enum Stopped {
    Wasi(Stop),
    Killed,
    TooDeep,
}

/// An import call's answer that the guest must not resume: the engine unwinds it and
/// then reports [`Ended::HostStopped`]; [`GuardedHost::finish`] knows why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestMustEnd;

/// One run's host state: WASI, the memory budget and the kill switch.
pub struct GuardedHost<'a> {
    wasi: WasiHost,
    budget: MemoryBudget,
    /// What the tables hold, in the budget's bytes: their initial elements and every
    /// grow the budget allowed.
    table_bytes: u64,
    control: &'a RunControl,
    max_depth: Option<u32>,
    stopped: Option<Stopped>,
}

impl<'a> GuardedHost<'a> {
    /// The host for one run of a module that starts with `initial` memory and tables;
    /// `Err(run)` is the finished run when that alone exceeds the limit. `max_depth` is
    /// the depth the module was instrumented with, for the message.
    pub fn new(
        spec: &mut RunSpec,
        control: &'a RunControl,
        initial: InitialSize,
        max_depth: Option<u32>,
    ) -> Result<std::result::Result<Self, RawRun>> {
        let mut budget = MemoryBudget::new(spec.limits.memory_bytes);
        if !budget.request_grow(0, initial.memory)
            || !budget.request_table_grow(0, initial.table_elements)
        {
            return Ok(Err(RawRun {
                outcome: RawOutcome::Trap(
                    TrapKind::Other,
                    "the module's initial memory and tables exceed the memory limit".into(),
                ),
                memory_denied: true,
            }));
        }
        Ok(Ok(GuardedHost {
            wasi: WasiHost::new(spec, control)?,
            budget,
            table_bytes: initial.table_elements.saturating_mul(TABLE_ELEMENT_BYTES),
            control,
            max_depth,
            stopped: None,
        }))
    }

    /// Runs import number `import` of [`imports`] with its arguments as 64-bit slots,
    /// against the guest's memory as it is now. `Ok` carries the result, if the import
    /// has one; `Err` means the guest must end (see [`finish`](Self::finish)).
    pub fn call(
        &mut self,
        import: usize,
        memory: &mut [u8],
        args: &[u64],
    ) -> std::result::Result<Option<u64>, GuestMustEnd> {
        let wasi = FUNCTIONS.len();
        match import.checked_sub(wasi) {
            None => match self.wasi.call(import, memory, args) {
                Ok(errno) => Ok(Some(u64::from(errno as u32))),
                Err(stop) => self.stop(Stopped::Wasi(stop)),
            },
            Some(0) => {
                if self.control.killed().is_some() {
                    return self.stop(Stopped::Killed);
                }
                Ok(Some(FUEL as u64))
            }
            Some(1) => {
                let delta = args.first().copied().unwrap_or_default() as u32;
                let current = memory.len() as u64;
                let desired = current + u64::from(delta) * WASM_PAGE;
                // The engine may have refused a grow the budget allowed (the module's
                // own maximum): start from the size it really has.
                self.budget.observe(current + self.table_bytes);
                let allowed = self.budget.request_grow(current, desired);
                Ok(Some(u64::from(if allowed { delta } else { DENIED_DELTA })))
            }
            Some(2) => self.stop(Stopped::TooDeep),
            Some(_) => {
                // Tables only grow; a grow the engine then refuses (the table's own
                // maximum) stays counted, which errs on the safe side.
                let delta = args.first().copied().unwrap_or_default() as u32;
                let allowed = self.budget.request_table_grow(0, u64::from(delta));
                if allowed {
                    self.table_bytes += u64::from(delta) * TABLE_ELEMENT_BYTES;
                }
                Ok(Some(u64::from(if allowed { delta } else { DENIED_DELTA })))
            }
        }
    }

    fn stop(&mut self, why: Stopped) -> std::result::Result<Option<u64>, GuestMustEnd> {
        self.stopped = Some(why);
        Err(GuestMustEnd)
    }

    /// The run's outcome, from how the engine's call ended.
    pub fn finish(self, ended: Ended) -> RawRun {
        let outcome = match ended {
            Ended::Returned => RawOutcome::Returned,
            Ended::Trap(kind, message) => RawOutcome::Trap(kind, message),
            Ended::HostStopped => match self.stopped {
                Some(Stopped::Wasi(Stop::Exit(status))) => RawOutcome::Exit(status),
                Some(Stopped::Wasi(Stop::Trap(message))) => {
                    RawOutcome::Trap(TrapKind::Other, message)
                }
                Some(Stopped::Killed) => RawOutcome::Interrupted,
                Some(Stopped::TooDeep) => RawOutcome::Trap(
                    TrapKind::StackOverflow,
                    format!(
                        "call stack exhausted: more than {} nested calls",
                        self.max_depth.unwrap_or_default()
                    ),
                ),
                None => RawOutcome::Trap(TrapKind::Other, "a host function panicked".into()),
            },
        };
        RawRun {
            outcome,
            memory_denied: self.budget.denied(),
        }
    }
}
