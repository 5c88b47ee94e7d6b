//! WasmEdge's error codes as the contract's trap kinds.

use wasmux_core::TrapKind;

/// The kind of a WasmEdge runtime error, from its code (`enum_errcode.h`).
pub(crate) fn trap_kind(code: u32) -> TrapKind {
    match code {
        0x0404 => TrapKind::IntegerDivideByZero,
        0x0405 => TrapKind::IntegerOverflow,
        0x0406 => TrapKind::BadConversionToInteger,
        0x0407 | 0x040C => TrapKind::TableOutOfBounds,
        0x0408 => TrapKind::MemoryOutOfBounds,
        0x040A => TrapKind::Unreachable,
        0x040B | 0x0413 => TrapKind::IndirectCallToNull,
        0x040D => TrapKind::BadSignature,
        0x0412 => TrapKind::NullReference,
        _ => TrapKind::Other,
    }
}
