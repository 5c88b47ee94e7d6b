//! Is this a Wasm workload, and of which kind? Decided by content (the header, or WAT
//! text), never by file suffix, and by the bundle's annotations (docs/oci-to-wasi.md).

use std::collections::HashMap;

use wasmux_core::error::printable;
use wasmux_core::{Error, Result, WasmBinary, WasmKind};

/// Annotation set by Wasm image builders (`compat` or `compat-smart`).
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
/// crun's handler annotation: `wasm`, `wasm-smart`, or an engine name.
pub const HANDLER_ANNOTATION: &str = "run.oci.handler";

/// What the content of an entrypoint looks like.
#[derive(Debug)]
pub enum Sniffed {
    /// A Wasm binary or WAT text (converted).
    Wasm(WasmBinary),
    /// Not Wasm; the reason says what it looks like instead.
    NotWasm(String),
}

/// Classifies entrypoint bytes: a core module, a component, WAT text, or not Wasm.
/// A WAT file that fails to parse is an error (it clearly meant to be Wasm).
pub fn sniff(bytes: Vec<u8>, origin: &str) -> Result<Sniffed> {
    if let Some(kind) = WasmKind::of_binary(&bytes, origin)? {
        return Ok(Sniffed::Wasm(WasmBinary {
            bytes: bytes.into(),
            kind,
            origin: origin.to_owned(),
        }));
    }
    if bytes.starts_with(b"\x7fELF") {
        return Ok(Sniffed::NotWasm("an ELF executable".into()));
    }
    if bytes.starts_with(b"#!") {
        return Ok(Sniffed::NotWasm(
            "a script with a #! interpreter line".into(),
        ));
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(Sniffed::NotWasm(
            "binary data without the \\0asm magic".into(),
        ));
    };
    if !looks_like_wat(text) {
        return Ok(Sniffed::NotWasm(
            "text that is not a WAT (module ...) or (component ...)".into(),
        ));
    }
    let binary = wat::parse_str(text).map_err(|e| {
        // The parser quotes the offending source line: an image's bytes, which may
        // hold terminal escapes, shown escaped.
        Error::invalid_module(
            origin,
            format!("WAT does not parse: {}", printable(&e.to_string())),
        )
    })?;
    sniff(binary, origin)
}

/// A cheap test before the full parse: the first token after whitespace and
/// comments opens a module or component.
fn looks_like_wat(text: &str) -> bool {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(";;") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("(;") {
            rest = after.split_once(";)").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    let Some(body) = rest.strip_prefix('(') else {
        return false;
    };
    let body = body.trim_start();
    body.starts_with("module") || body.starts_with("component")
}

/// How strictly a bundle claims to be Wasm, from its annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerMode {
    /// `compat` / `run.oci.handler=wasm` / an engine name: the entrypoint must be Wasm.
    Strict,
    /// `compat-smart` / `wasm-smart` / no annotation: Wasm only if the content is Wasm.
    Smart,
}

/// The handler mode and requested engine (if any) that a bundle's annotations ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerRequest {
    /// Whether non-Wasm content is an error or a "not ours" answer.
    pub mode: HandlerMode,
    /// The engine named by `run.oci.handler=<engine>`, if any.
    pub engine: Option<String>,
}

impl HandlerRequest {
    /// Reads the Wasm annotations. Unknown variants are rejected, not guessed at.
    pub fn from_annotations(annotations: Option<&HashMap<String, String>>) -> Result<Self> {
        let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
        let mut request = HandlerRequest {
            mode: HandlerMode::Smart,
            engine: None,
        };
        match get(VARIANT_ANNOTATION) {
            None => {}
            Some("compat") => request.mode = HandlerMode::Strict,
            Some("compat-smart") => {}
            Some(other) => {
                return Err(Error::InvalidBundle(format!(
                    "unknown {VARIANT_ANNOTATION} value {other:?} (expected compat or compat-smart)"
                )));
            }
        }
        match get(HANDLER_ANNOTATION) {
            None | Some("wasm-smart") => {}
            Some("wasm") => request.mode = HandlerMode::Strict,
            Some(engine) => {
                request.mode = HandlerMode::Strict;
                request.engine = Some(engine.to_owned());
            }
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(bytes: &[u8]) -> Option<WasmKind> {
        match sniff(bytes.to_vec(), "t").ok()? {
            Sniffed::Wasm(w) => Some(w.kind),
            Sniffed::NotWasm(_) => None,
        }
    }

    #[test]
    fn recognises_core_modules_and_components_by_header() {
        assert_eq!(kind_of(b"\0asm\x01\0\0\0"), Some(WasmKind::CoreModule));
        assert_eq!(kind_of(b"\0asm\x0d\0\x01\0"), Some(WasmKind::Component));
    }

    #[test]
    fn truncated_header_is_an_invalid_module() {
        let err = sniff(b"\0asm\x01".to_vec(), "t.wasm").unwrap_err();
        assert!(matches!(err, Error::InvalidModule { .. }), "{err}");
    }

    #[test]
    fn elf_scripts_and_text_are_not_wasm() {
        assert_eq!(kind_of(b"\x7fELF\x02\x01\x01"), None);
        assert_eq!(kind_of(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(kind_of(b"hello world\n"), None);
        assert_eq!(kind_of(&[0xff, 0xfe, 0x00]), None);
    }

    #[test]
    fn wat_is_converted_to_binary() {
        let wat = b";; a comment\n(; block ;) (module (func (export \"_start\")))";
        assert_eq!(kind_of(wat), Some(WasmKind::CoreModule));
        let err = sniff(b"(module (func (bogus)))".to_vec(), "bad.wat").unwrap_err();
        assert!(matches!(err, Error::InvalidModule { .. }));
    }

    fn annotations(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn annotations_select_mode_and_engine() {
        let req = |pairs: &[(&str, &str)]| {
            HandlerRequest::from_annotations(Some(&annotations(pairs))).unwrap()
        };
        assert_eq!(req(&[]).mode, HandlerMode::Smart);
        assert_eq!(
            req(&[(VARIANT_ANNOTATION, "compat")]).mode,
            HandlerMode::Strict
        );
        assert_eq!(
            req(&[(VARIANT_ANNOTATION, "compat-smart")]).mode,
            HandlerMode::Smart
        );
        assert_eq!(
            req(&[(HANDLER_ANNOTATION, "wasm")]).mode,
            HandlerMode::Strict
        );
        assert_eq!(
            req(&[(HANDLER_ANNOTATION, "wasm-smart")]).mode,
            HandlerMode::Smart
        );
        let chosen = req(&[(HANDLER_ANNOTATION, "wasmtime")]);
        assert_eq!(chosen.engine.as_deref(), Some("wasmtime"));
        assert_eq!(chosen.mode, HandlerMode::Strict);
        assert!(
            HandlerRequest::from_annotations(Some(&annotations(&[(VARIANT_ANNOTATION, "x")])))
                .is_err()
        );
    }
}
