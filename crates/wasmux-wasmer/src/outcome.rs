//! wasmer errors → the engine-neutral `RawOutcome`.

use wasmer::RuntimeError;
use wasmer::sys::vm::TrapCode;
use wasmux_core::{RawOutcome, TrapKind};

use crate::wasi::GuestExit;

/// What a failed guest call means: an exit, an interrupt, or a trap of some kind.
pub(crate) fn outcome_of(error: &RuntimeError) -> RawOutcome {
    if let Some(GuestExit(status)) = error.downcast_ref::<GuestExit>() {
        return RawOutcome::Exit(*status);
    }
    match error.clone().to_trap() {
        Some(TrapCode::HostInterrupt) => RawOutcome::Interrupted,
        Some(code) => RawOutcome::Trap(trap_kind(code), error.message()),
        // A host function failed fatally (for example a WASI call the guest misused).
        None => RawOutcome::Trap(TrapKind::Other, error.message()),
    }
}

fn trap_kind(code: TrapCode) -> TrapKind {
    match code {
        TrapCode::UnreachableCodeReached => TrapKind::Unreachable,
        TrapCode::HeapAccessOutOfBounds => TrapKind::MemoryOutOfBounds,
        TrapCode::StackOverflow => TrapKind::StackOverflow,
        TrapCode::IntegerDivisionByZero => TrapKind::IntegerDivideByZero,
        TrapCode::IntegerOverflow => TrapKind::IntegerOverflow,
        TrapCode::BadConversionToInteger => TrapKind::BadConversionToInteger,
        TrapCode::IndirectCallToNull => TrapKind::IndirectCallToNull,
        TrapCode::BadSignature => TrapKind::BadSignature,
        TrapCode::TableAccessOutOfBounds => TrapKind::TableOutOfBounds,
        TrapCode::HeapMisaligned | TrapCode::UnalignedAtomic => TrapKind::MisalignedAccess,
        _ => TrapKind::Other,
    }
}
