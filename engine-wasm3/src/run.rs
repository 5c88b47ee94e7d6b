//! One run: a thread of its own (wasm3's interpreter recurses on the native stack, and
//! its environments cannot cross threads), a fresh wasm3 environment, wasmux's WASI and
//! the guard imports the instrumented module calls.

use wasmux_engine_api::{
    Descriptor, Error, MemoryBudget, Module, RawOutcome, RawRun, Result, RunControl, RunSpec,
    TrapKind,
};
use wasmux_wasi_preview1::{FUNCTIONS, MODULE as WASI_MODULE, Stop, ValType, WasiHost};

use crate::ffi::{Ended, HostCalls, Import, Instance};
use crate::instrument::{DENIED_DELTA, FUEL, GROW, GUARD_MODULE, POLL};
use crate::outcome::trap_kind;
use crate::{DESCRIPTOR, NAME, Wasm3Module};

/// wasm3's value stack per run, in bytes: 8-byte slots, about a million of them.
const VALUE_STACK: u32 = 8 << 20;
/// The run thread's native stack. wasm3 guards its own recursion against about 8 MiB
/// of native stack; this leaves it room to trap cleanly instead of crashing.
const NATIVE_STACK: usize = 32 << 20;
const WASM_PAGE: u64 = 65536;

/// Every import the runner links: the WASI functions, then the two guards.
fn imports() -> Vec<Import> {
    let letter = |t: &ValType| match t {
        ValType::I32 => 'i',
        ValType::I64 => 'I',
    };
    let mut imports: Vec<Import> = FUNCTIONS
        .iter()
        .map(|f| Import {
            module: WASI_MODULE,
            name: f.name,
            params: f.params.len(),
            results: usize::from(f.returns_errno),
            signature: format!(
                "{}({})",
                if f.returns_errno { 'i' } else { 'v' },
                f.params.iter().map(letter).collect::<String>()
            ),
        })
        .collect();
    imports.push(Import {
        module: GUARD_MODULE,
        name: POLL,
        params: 0,
        results: 1,
        signature: "i()".into(),
    });
    imports.push(Import {
        module: GUARD_MODULE,
        name: GROW,
        params: 1,
        results: 1,
        signature: "i(i)".into(),
    });
    imports
}

/// Why the guest was ended by a host call.
enum Stopped {
    Wasi(Stop),
    Killed,
}

/// What the host calls of one run work on.
struct RunState<'a> {
    wasi: WasiHost,
    budget: MemoryBudget,
    control: &'a RunControl,
    stopped: Option<Stopped>,
}

impl HostCalls for RunState<'_> {
    fn call(
        &mut self,
        import: usize,
        memory: &mut [u8],
        args: &[u64],
    ) -> std::result::Result<Option<u64>, ()> {
        let wasi = FUNCTIONS.len();
        match import {
            i if i < wasi => match self.wasi.call(i, memory, args) {
                Ok(errno) => Ok(Some(u64::from(errno as u32))),
                Err(stop) => {
                    self.stopped = Some(Stopped::Wasi(stop));
                    Err(())
                }
            },
            i if i == wasi => {
                if self.control.killed().is_some() {
                    self.stopped = Some(Stopped::Killed);
                    return Err(());
                }
                Ok(Some(FUEL as u64))
            }
            _ => {
                let delta = args.first().copied().unwrap_or_default() as u32;
                let current = memory.len() as u64;
                let desired = current + u64::from(delta) * WASM_PAGE;
                // wasm3 may have refused a grow the budget allowed (the module's own
                // maximum): start from the size it really has.
                self.budget.observe(current);
                let allowed = self.budget.request_grow(current, desired);
                Ok(Some(u64::from(if allowed { delta } else { DENIED_DELTA })))
            }
        }
    }
}

impl Wasm3Module {
    fn run_on_this_thread(&self, mut spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        let mut budget = MemoryBudget::new(spec.limits.memory_bytes);
        if !budget.request_grow(0, self.initial_memory) {
            return Ok(RawRun {
                outcome: RawOutcome::Trap(
                    TrapKind::Other,
                    "the module's initial memory exceeds the memory limit".into(),
                ),
                memory_denied: true,
            });
        }
        let mut state = RunState {
            wasi: WasiHost::new(&mut spec)?,
            budget,
            control,
            stopped: None,
        };
        let entry = spec.entry.as_deref().unwrap_or("_start");
        let ended = {
            let _span = tracing::debug_span!("instantiate", engine = NAME).entered();
            let mut instance = Instance::new(&self.bytes, VALUE_STACK, &imports(), &mut state)
                .map_err(|e| Error::Link {
                    path: self.origin.clone(),
                    message: format!("wasm3 cannot run this module: {e}"),
                })?;
            drop(_span);
            let _span = tracing::debug_span!("call", engine = NAME, entry).entered();
            instance
                .call(entry)
                .map_err(|reason| Error::EntryFunction {
                    name: entry.to_owned(),
                    reason,
                })?
        };
        let outcome = match ended {
            Ended::Returned => RawOutcome::Returned,
            Ended::Trap(message) => RawOutcome::Trap(trap_kind(&message), message),
            Ended::HostStopped => match state.stopped {
                Some(Stopped::Wasi(Stop::Exit(status))) => RawOutcome::Exit(status),
                Some(Stopped::Wasi(Stop::Trap(message))) => {
                    RawOutcome::Trap(TrapKind::Other, message)
                }
                Some(Stopped::Killed) => RawOutcome::Interrupted,
                None => RawOutcome::Trap(TrapKind::Other, "a host function panicked".into()),
            },
        };
        Ok(RawRun {
            outcome,
            memory_denied: state.budget.denied(),
        })
    }
}

impl Module for Wasm3Module {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        std::thread::scope(|scope| {
            let runner = std::thread::Builder::new()
                .name("wasmux-wasm3".into())
                .stack_size(NATIVE_STACK)
                .spawn_scoped(scope, || self.run_on_this_thread(spec, control))
                .map_err(|e| Error::io("starting the wasm3 run thread", e))?;
            runner.join().unwrap_or_else(|_| {
                Ok(RawRun {
                    outcome: RawOutcome::Trap(
                        TrapKind::Other,
                        "the wasm3 run thread panicked".into(),
                    ),
                    memory_denied: false,
                })
            })
        })
    }
}
