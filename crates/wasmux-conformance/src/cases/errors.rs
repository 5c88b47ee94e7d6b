//! Bundles that must not run: each a clear error with the contract's exit code.

use std::path::Path;

use super::probe;
use crate::suite::{Check, Ctx};
use crate::{BundleBuilder, guests};

pub fn bad_bundles(ctx: &Ctx) -> Check {
    let hello = std::fs::read(guests::core_module("hello")).map_err(|e| e.to_string())?;
    let truncated = ctx.write(
        "truncated",
        &BundleBuilder::default()
            .file("/m.wasm", &hello[..hello.len() / 2])
            .args(["/m.wasm"]),
    );
    ctx.run(&truncated)
        .expect_error(126, "invalid module")
        .map_err(|e| format!("truncated: {e}"))?;

    let text = ctx.write(
        "text",
        &BundleBuilder::default()
            .file("/m.wasm", "plain text\n")
            .args(["/m.wasm"])
            .annotation("module.wasm.image/variant", "compat"),
    );
    ctx.run(&text)
        .expect_error(126, "not a WebAssembly module")
        .map_err(|e| format!("text: {e}"))?;

    let missing = ctx.write("missing", &BundleBuilder::default().args(["/absent.wasm"]));
    ctx.run(&missing)
        .expect_error(127, "not found")
        .map_err(|e| format!("missing entrypoint: {e}"))?;

    let broken = ctx.write("broken-config", &probe(&["return"]));
    std::fs::write(
        broken.join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": [",
    )
    .map_err(|e| e.to_string())?;
    ctx.run(&broken)
        .expect_error(125, "invalid OCI bundle config")
        .map_err(|e| format!("config: {e}"))?;

    let no_source = ctx.write(
        "no-mount-source",
        &probe(&["return"]).bind(Path::new("/no/such/dir"), "/data", false),
    );
    ctx.run(&no_source)
        .expect_error(125, "/no/such/dir")
        .map_err(|e| format!("mount source: {e}"))?;

    let unknown_import =
        r#"(module (import "env" "nobody_provides_this" (func)) (func (export "_start") call 0))"#;
    let link = ctx.write(
        "unknown-import",
        &BundleBuilder::default()
            .file("/m.wat", unknown_import)
            .args(["/m.wat"]),
    );
    ctx.run(&link)
        .expect_error(126, "nobody_provides_this")
        .map_err(|e| format!("unknown import: {e}"))
}

/// Under `compat-smart`, ELF and `#!` entrypoints are ordinary Linux containers.
pub fn compat_smart_linux(ctx: &Ctx) -> Check {
    for (name, content) in [
        ("elf", &b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"[..]),
        ("script", b"#!/bin/sh\necho hi\n"),
    ] {
        let bundle = ctx.write(
            name,
            &BundleBuilder::default()
                .file("/bin/app", content)
                .args(["/bin/app"])
                .annotation("module.wasm.image/variant", "compat-smart"),
        );
        ctx.run(&bundle)
            .expect_error(126, "not a Wasm workload")
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}
