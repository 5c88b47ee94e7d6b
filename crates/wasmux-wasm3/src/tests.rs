//! Loading, without running a guest (the conformance suite and
//! `tests/` run them).

use std::sync::Arc;

use wasmux_core::{DynEngine, Error, WasmBinary, WasmKind};

use super::*;

fn binary(wat: &str) -> WasmBinary {
    WasmBinary {
        bytes: Arc::from(wat::parse_str(wat).unwrap()),
        kind: WasmKind::CoreModule,
        origin: "test.wasm".into(),
    }
}

#[test]
fn an_import_nothing_provides_is_a_link_error() {
    let wat = r#"(module (import "env" "host_secret" (func)) (func (export "_start")))"#;
    let error = Wasm3Engine::default().load(&binary(wat)).err().unwrap();
    assert!(matches!(error, Error::Link { .. }), "{error}");
    assert!(error.to_string().contains("env::host_secret"), "{error}");
}

#[test]
fn malformed_and_truncated_modules_are_invalid_not_a_crash() {
    let valid =
        wat::parse_str(r#"(module (func (export "_start") (drop (i32.const 1))))"#).unwrap();
    for bytes in [&b"\0asm\x01\0\0\0\x01\xff"[..], &valid[..valid.len() - 3]] {
        let wasm = WasmBinary {
            bytes: Arc::from(bytes),
            kind: WasmKind::CoreModule,
            origin: "bad.wasm".into(),
        };
        let error = Wasm3Engine::default().load(&wasm).err().unwrap();
        assert!(matches!(error, Error::InvalidModule { .. }), "{error}");
    }
}

#[test]
fn a_component_is_unsupported() {
    let wasm = WasmBinary {
        bytes: Arc::from(&b"\0asm\x0d\0\x01\0"[..]),
        kind: WasmKind::Component,
        origin: "c.wasm".into(),
    };
    let error = Wasm3Engine::default().load(&wasm).err().unwrap();
    assert!(matches!(error, Error::Unsupported { .. }), "{error}");
}

#[test]
fn trap_messages_map_to_kinds() {
    use wasmux_core::TrapKind;
    assert_eq!(
        outcome::trap_kind("[trap] stack overflow"),
        TrapKind::StackOverflow
    );
    assert_eq!(
        outcome::trap_kind("[trap] out of bounds memory access"),
        TrapKind::MemoryOutOfBounds
    );
    assert_eq!(outcome::trap_kind("something new"), TrapKind::Other);
}

#[test]
fn the_descriptor_names_the_wasm3_this_build_links() {
    let linked = std::ffi::CStr::from_bytes_with_nul(wasm3x_sys::M3_VERSION)
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(DESCRIPTOR.version, linked);
}
