//! wasm3's trap messages as the contract's trap kinds.

use wasmux_core::TrapKind;

/// The kind of a wasm3 trap, from its (static) message.
pub(crate) fn trap_kind(message: &str) -> TrapKind {
    let kinds = [
        ("[trap] unreachable executed", TrapKind::Unreachable),
        (
            "[trap] out of bounds memory access",
            TrapKind::MemoryOutOfBounds,
        ),
        ("[trap] stack overflow", TrapKind::StackOverflow),
        (
            "[trap] integer divide by zero",
            TrapKind::IntegerDivideByZero,
        ),
        ("[trap] integer overflow", TrapKind::IntegerOverflow),
        (
            "[trap] invalid conversion to integer",
            TrapKind::BadConversionToInteger,
        ),
        ("[trap] indirect call type mismatch", TrapKind::BadSignature),
        ("[trap] undefined element", TrapKind::TableOutOfBounds),
        (
            "[trap] out of bounds table access",
            TrapKind::TableOutOfBounds,
        ),
        ("[trap] uninitialized element", TrapKind::IndirectCallToNull),
        ("[trap] null reference", TrapKind::NullReference),
    ];
    kinds
        .into_iter()
        .find(|(text, _)| message.starts_with(text))
        .map_or(TrapKind::Other, |(_, kind)| kind)
}

/// The trap an instantiation error of wasm3's stands for, if it is one: an active
/// segment outside its memory or table, which the spec makes a trap of the
/// instantiation (wasm3 reports it as a load failure; an offset of 2 GiB or more,
/// negative as wasm3 reads it, is its "table underflow").
pub(crate) fn instantiation_trap(message: &str) -> Option<TrapKind> {
    match message {
        "data segment out of bounds" => Some(TrapKind::MemoryOutOfBounds),
        "table underflow" | "out of bounds table access" => Some(TrapKind::TableOutOfBounds),
        _ => None,
    }
}
