//! wasmtime errors → the engine-neutral `RawOutcome`.

use wasmtime::Trap;
use wasmtime_wasi::I32Exit;
use wasmux_core::{RawOutcome, TrapKind};

/// What a failed guest call means: an exit, an interrupt, or a trap of some kind.
pub(crate) fn outcome_of(error: &wasmtime::Error) -> RawOutcome {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        // proc_exit takes a u32; I32Exit stores it as i32 bits.
        return RawOutcome::Exit(exit.0 as u32);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => RawOutcome::Interrupted,
        Some(trap) => RawOutcome::Trap(trap_kind(*trap), format!("{error:#}")),
        // A host function failed fatally (for example a WASI call the guest misused).
        None => RawOutcome::Trap(TrapKind::Other, format!("{error:#}")),
    }
}

fn trap_kind(trap: Trap) -> TrapKind {
    match trap {
        Trap::UnreachableCodeReached => TrapKind::Unreachable,
        Trap::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
        Trap::StackOverflow => TrapKind::StackOverflow,
        Trap::IntegerDivisionByZero => TrapKind::IntegerDivideByZero,
        Trap::IntegerOverflow => TrapKind::IntegerOverflow,
        Trap::BadConversionToInteger => TrapKind::BadConversionToInteger,
        Trap::IndirectCallToNull => TrapKind::IndirectCallToNull,
        Trap::BadSignature => TrapKind::BadSignature,
        Trap::TableOutOfBounds | Trap::ArrayOutOfBounds => TrapKind::TableOutOfBounds,
        Trap::NullReference => TrapKind::NullReference,
        Trap::HeapMisaligned => TrapKind::MisalignedAccess,
        _ => TrapKind::Other,
    }
}
