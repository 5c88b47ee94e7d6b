//! Inputs the fuzz targets (`fuzz/`) found interesting or that once failed, replayed on
//! every test run: `fuzz-regressions/spec_mapping/*` as a bundle's `config.json` (in the
//! layout the target builds), `fuzz-regressions/module_load/*` loaded on every engine
//! (the first byte, which picks the engine in the target, is skipped: all engines load
//! every input here). Each must end in `Ok` or an error: a panic fails the test.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no regression inputs for {target}");
    files
}

#[test]
fn spec_mapping_inputs_map_or_fail_cleanly() {
    let _serial = crate::serial();
    for input in inputs("spec_mapping") {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("rootfs/dir")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("rootfs/hello.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(root.join("rootfs/script"), b"#!/bin/sh\n").unwrap();
        std::fs::copy(&input, root.join("config.json")).unwrap();
        let mapped = wasmux::Bundle::load(root).and_then(|bundle| bundle.run_spec());
        eprintln!("{}: {:?}", input.display(), mapped.map(|_| "mapped"));
    }
}

#[test]
fn module_load_inputs_load_or_fail_cleanly_on_every_engine() {
    let _serial = crate::serial();
    for input in inputs("module_load") {
        let bytes = std::fs::read(&input).unwrap();
        let Some((_, module)) = bytes.split_first() else {
            continue;
        };
        let Ok(wasmux::Sniffed::Wasm(wasm)) = wasmux::sniff(module.to_vec(), "fuzz.wasm") else {
            continue;
        };
        for entry in wasmux::ENGINES {
            let engine = wasmux::engine_by_name(entry.name).unwrap();
            let loaded = engine.load(&wasm);
            eprintln!("{} on {}: {:?}", input.display(), entry.name, loaded.err());
        }
    }
}

#[test]
fn differential_inputs_end_alike_on_every_engine() {
    let _serial = crate::serial();
    let engines = wasmux_conformance::differential::engines();
    let mut disagreements = Vec::new();
    for input in inputs("differential") {
        let command = std::fs::read(&input).unwrap();
        for found in wasmux_conformance::differential::disagreements(&engines, &command) {
            disagreements.push(format!("{}:\n{found}", input.display()));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// wasm3's compiler finds no operation for a binary operator (`i64.mul`, 0x7e; `i64.eq`,
/// 0x51; `i64.rotr`, 0x8a) whose operands both sit in registers, a state its
/// single-register code generator does not expect: it refuses a valid module (a failed
/// run, 126), never runs it to a wrong result; the other engines agree with wasmtime.
#[test]
fn open_differential_findings_still_end_as_recorded() {
    use wasmux_conformance::differential::{self, Outcome};
    let _serial = crate::serial();
    let engines = differential::engines();
    for input in inputs("differential-open") {
        let command = std::fs::read(&input).unwrap();
        let (_, reference) = &engines[0];
        let expected = differential::run_on(reference.as_ref(), &command);
        for (name, engine) in &engines[1..] {
            let got = differential::run_on(engine.as_ref(), &command);
            if name == "wasm3" {
                let refused = matches!(&got, Outcome::Error(e) if e.contains("no operation found for opcode"));
                assert!(refused, "{}: wasm3 now ends it as {got}", input.display());
            } else {
                assert_eq!(
                    differential::compare(&expected, &got),
                    differential::Verdict::Agree,
                    "{}: {name}: {got}; wasmtime: {expected}",
                    input.display()
                );
            }
        }
    }
}
