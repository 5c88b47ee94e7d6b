//! Wasm binaries as engines take them: a core module or a component, told apart by
//! the header, never by a file suffix. (Telling Wasm from ELF, scripts and WAT text is
//! the OCI mapping's job: `wasmux-bundle`.)

use std::sync::Arc;

use crate::error::{Error, Result};

/// The binary kinds an engine is handed. WAT is converted to one of these centrally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WasmKind {
    /// A core module (`\0asm` version 1), run through WASI preview1.
    CoreModule,
    /// A component (`\0asm` component layer), run through `wasi:cli/run`.
    Component,
}

/// Validated-by-header Wasm bytes, ready for an engine, with where they came from.
#[derive(Debug, Clone)]
pub struct WasmBinary {
    /// Binary module or component (WAT already converted).
    pub bytes: Arc<[u8]>,
    /// Core module or component.
    pub kind: WasmKind,
    /// Where the bytes came from, for error messages.
    pub origin: String,
}

const MAGIC: &[u8; 4] = b"\0asm";
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
const COMPONENT_LAYER: [u8; 2] = [1, 0];

impl WasmKind {
    /// The kind of a Wasm binary by its header: `None` when `bytes` do not start with
    /// the Wasm magic; an unknown or truncated version after the magic is an invalid
    /// module (the bytes clearly meant to be Wasm).
    pub fn of_binary(bytes: &[u8], origin: &str) -> Result<Option<WasmKind>> {
        let Some(header) = bytes.strip_prefix(MAGIC) else {
            return Ok(None);
        };
        match header.get(..4) {
            Some(v) if v == CORE_VERSION => Ok(Some(WasmKind::CoreModule)),
            Some(v) if v[2..] == COMPONENT_LAYER => Ok(Some(WasmKind::Component)),
            _ => Err(Error::invalid_module(
                origin,
                "unknown or truncated Wasm binary version header",
            )),
        }
    }
}

impl WasmBinary {
    /// A Wasm binary from bytes an embedder already holds: anything without the Wasm
    /// header (text included) is an invalid module.
    pub fn new(bytes: Vec<u8>, origin: &str) -> Result<WasmBinary> {
        match WasmKind::of_binary(&bytes, origin)? {
            Some(kind) => Ok(WasmBinary {
                bytes: bytes.into(),
                kind,
                origin: origin.to_owned(),
            }),
            None => Err(Error::invalid_module(
                origin,
                "not a Wasm binary (no \\0asm header)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_core_modules_and_components_by_header() {
        let kind = |bytes: &[u8]| WasmKind::of_binary(bytes, "t").unwrap();
        assert_eq!(kind(b"\0asm\x01\0\0\0"), Some(WasmKind::CoreModule));
        assert_eq!(kind(b"\0asm\x0d\0\x01\0"), Some(WasmKind::Component));
        assert_eq!(kind(b"\x7fELF\x02\x01\x01"), None);
        assert_eq!(kind(b"(module)"), None);
    }

    #[test]
    fn a_truncated_header_or_text_is_an_invalid_module() {
        let err = WasmKind::of_binary(b"\0asm\x01", "t.wasm").unwrap_err();
        assert!(matches!(err, Error::InvalidModule { .. }), "{err}");
        let err = WasmBinary::new(b"(module)".to_vec(), "t.wat").unwrap_err();
        assert!(matches!(err, Error::InvalidModule { .. }), "{err}");
    }
}
