//! WAMR's exception messages as the contract's trap kinds.

use wasmux_core::TrapKind;

/// The kind of a WAMR trap, from its message (without WAMR's `Exception: ` prefix).
pub(crate) fn trap_kind(message: &str) -> TrapKind {
    match message {
        "unreachable" => TrapKind::Unreachable,
        "out of bounds memory access" => TrapKind::MemoryOutOfBounds,
        // The interpreter's frame stack, the native stack, and the shadow stack
        // (`__stack_pointer`) that WAMR bounds-checks for toolchain-built guests.
        "wasm operand stack overflow"
        | "native stack overflow"
        | "wasm auxiliary stack overflow"
        | "wasm auxiliary stack underflow" => TrapKind::StackOverflow,
        "integer divide by zero" => TrapKind::IntegerDivideByZero,
        "integer overflow" => TrapKind::IntegerOverflow,
        "invalid conversion to integer" => TrapKind::BadConversionToInteger,
        "indirect call type mismatch" => TrapKind::BadSignature,
        "undefined element" | "out of bounds table access" => TrapKind::TableOutOfBounds,
        "uninitialized element" => TrapKind::IndirectCallToNull,
        "null reference" | "null function reference" => TrapKind::NullReference,
        _ => TrapKind::Other,
    }
}

/// The trap an instantiation error of WAMR's stands for, if it is one: an active
/// segment outside its memory or table, which the spec makes a trap of the
/// instantiation (WAMR reports it as a failed instantiation).
pub(crate) fn instantiation_trap(message: &str) -> Option<TrapKind> {
    let reason = message.strip_prefix("WASM module instantiate failed: ")?;
    match trap_kind(reason) {
        kind @ (TrapKind::MemoryOutOfBounds | TrapKind::TableOutOfBounds) => Some(kind),
        _ => None,
    }
}
