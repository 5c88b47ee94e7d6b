//! The exit-status contract (README, "Exit codes"): one typed outcome per run, one exit code table.

use std::fmt;

/// SIGKILL: what a deadline or a default kill delivers.
pub const SIGKILL: i32 = 9;
/// SIGTERM: the polite kill a runtime sends first.
pub const SIGTERM: i32 = 15;
/// SIGXCPU: what a spent CPU budget delivers, as the kernel's `RLIMIT_CPU` does.
pub const SIGXCPU: i32 = 24;

/// How a started workload ended. Every engine reports the same variant for the
/// same guest behaviour, so callers never need to know which engine ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// The entry function returned (`0`) or the guest called `proc_exit(n)`.
    /// The full `u32` is kept; [`exit_code`](Self::exit_code) truncates it.
    Exited(u32),
    /// The guest trapped.
    Trapped {
        /// Which trap, for programmatic handling.
        kind: TrapKind,
        /// The engine's message, for people.
        message: String,
    },
    /// A memory grow was denied by the memory limit and the guest then failed.
    OutOfMemory,
    /// Stopped through the [`RunControl`](crate::RunControl) or its deadline, with this signal.
    Killed(i32),
}

impl ExitStatus {
    /// The process exit code for this status; the same on every engine.
    pub fn exit_code(&self) -> u8 {
        match self {
            ExitStatus::Exited(n) => (n & 0xff) as u8,
            ExitStatus::Trapped { .. } => 128 + 6,
            ExitStatus::OutOfMemory => 128 + SIGKILL as u8,
            ExitStatus::Killed(signal) => 128u8.wrapping_add(*signal as u8),
        }
    }

    /// True when the guest finished on its own with status 0.
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Exited(0))
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(n) => write!(f, "exited with status {n}"),
            ExitStatus::Trapped { kind, message } => write!(f, "wasm trap ({kind}): {message}"),
            ExitStatus::OutOfMemory => f.write_str("out of memory: the memory limit denied a grow"),
            ExitStatus::Killed(SIGXCPU) => {
                write!(
                    f,
                    "killed by signal {SIGXCPU} (its CPU time budget was spent)"
                )
            }
            ExitStatus::Killed(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// The kinds of trap the Wasm spec defines, named engine-neutrally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrapKind {
    /// An `unreachable` instruction (also how Rust's `abort` and panics end).
    Unreachable,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// The call stack exhausted its limit.
    StackOverflow,
    /// Integer division or remainder by zero.
    IntegerDivideByZero,
    /// Signed integer overflow in division.
    IntegerOverflow,
    /// A float-to-int conversion of NaN or an out-of-range value.
    BadConversionToInteger,
    /// `call_indirect` through a null or out-of-bounds table slot.
    IndirectCallToNull,
    /// `call_indirect` with a mismatched signature.
    BadSignature,
    /// A table access out of bounds.
    TableOutOfBounds,
    /// A null reference was dereferenced.
    NullReference,
    /// A misaligned atomic access.
    MisalignedAccess,
    /// Anything else the engine reports as fatal to the guest.
    Other,
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrapKind::Unreachable => "unreachable",
            TrapKind::MemoryOutOfBounds => "memory out of bounds",
            TrapKind::StackOverflow => "stack overflow",
            TrapKind::IntegerDivideByZero => "integer divide by zero",
            TrapKind::IntegerOverflow => "integer overflow",
            TrapKind::BadConversionToInteger => "invalid conversion to integer",
            TrapKind::IndirectCallToNull => "indirect call to null",
            TrapKind::BadSignature => "indirect call signature mismatch",
            TrapKind::TableOutOfBounds => "table out of bounds",
            TrapKind::NullReference => "null reference",
            TrapKind::MisalignedAccess => "misaligned access",
            TrapKind::Other => "other",
        })
    }
}

/// What a backend observed when the guest stopped, before the contract is applied.
/// Backends report this; [`classify`](Self::classify) turns it into the one
/// [`ExitStatus`] every engine agrees on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawOutcome {
    /// The entry function returned normally.
    Returned,
    /// The guest called `proc_exit` (or `wasi:cli/exit`) with this status.
    Exit(u32),
    /// The guest trapped.
    Trap(TrapKind, String),
    /// The engine stopped the guest because the run control asked it to.
    Interrupted,
}

impl RawOutcome {
    /// Applies the contract: a kill wins over the trap it caused, a failure after a
    /// denied memory grow is `OutOfMemory`, and an exit stays an exit.
    pub fn classify(self, killed: Option<i32>, memory_denied: bool) -> ExitStatus {
        match self {
            RawOutcome::Returned => ExitStatus::Exited(0),
            RawOutcome::Exit(n) => ExitStatus::Exited(n),
            RawOutcome::Interrupted | RawOutcome::Trap(..) if killed.is_some() => {
                ExitStatus::Killed(killed.unwrap_or(SIGKILL))
            }
            RawOutcome::Interrupted => ExitStatus::Killed(SIGKILL),
            RawOutcome::Trap(..) if memory_denied => ExitStatus::OutOfMemory,
            RawOutcome::Trap(kind, message) => ExitStatus::Trapped { kind, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(ExitStatus::Exited(0).exit_code(), 0);
        assert_eq!(ExitStatus::Exited(7).exit_code(), 7);
        assert_eq!(ExitStatus::Exited(255).exit_code(), 255);
        assert_eq!(ExitStatus::Exited(256 + 3).exit_code(), 3);
        let trap = ExitStatus::Trapped {
            kind: TrapKind::Unreachable,
            message: String::new(),
        };
        assert_eq!(trap.exit_code(), 134);
        assert_eq!(ExitStatus::OutOfMemory.exit_code(), 137);
        assert_eq!(ExitStatus::Killed(SIGKILL).exit_code(), 137);
        assert_eq!(ExitStatus::Killed(SIGTERM).exit_code(), 143);
    }

    #[test]
    fn classify_prefers_kill_then_oom_then_trap() {
        let trap = || RawOutcome::Trap(TrapKind::Unreachable, "boom".into());
        assert_eq!(
            trap().classify(Some(SIGTERM), true),
            ExitStatus::Killed(SIGTERM)
        );
        assert_eq!(trap().classify(None, true), ExitStatus::OutOfMemory);
        assert_eq!(
            trap().classify(None, false),
            ExitStatus::Trapped {
                kind: TrapKind::Unreachable,
                message: "boom".into()
            }
        );
        assert_eq!(
            RawOutcome::Interrupted.classify(None, false),
            ExitStatus::Killed(SIGKILL)
        );
        // A guest that exits on its own keeps its status, even after a denied grow or a late kill.
        assert_eq!(
            RawOutcome::Exit(3).classify(Some(SIGKILL), true),
            ExitStatus::Exited(3)
        );
        assert_eq!(
            RawOutcome::Returned.classify(None, true),
            ExitStatus::Exited(0)
        );
    }
}
