//! Differential fuzzing: a wasm-smith module (no imports, a `run` export, fuel so every
//! loop and recursion ends) is run on every engine compiled in, and its outcome (exit
//! status, trap kind, the hash of its result, globals and memory) must equal wasmtime's
//! (Cranelift). A disagreement panics, so libFuzzer keeps the input; with
//! `WASMUX_DIFF_SAVE=DIR` the command that disagreed is also written to DIR, ready for
//! `crates/wasmux-conformance/fuzz-regressions/differential/`
//! (`fuzz/scripts/differential.sh` does both; docs/reliability.md). With
//! `WASMUX_DIFF_EXPORT=DIR` every command run is written there: a corpus replayed with
//! `-runs=0` becomes commands the test command can replay too.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wasmux_conformance::differential;

/// Loop iterations and calls a module may make before its fuel traps: enough for real
/// work, few enough for an interpreter to finish in milliseconds.
const FUEL: u32 = 10_000;

/// The proposals every engine implements (the conformance matrix): MVP with sign
/// extension, saturating conversions and multiple results. NaNs are canonicalized, as
/// the bits of a NaN result are each engine's own by the spec.
fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        exports: Some(differential::required_exports()),
        max_imports: 0,
        allow_start_export: false,
        canonicalize_nans: true,
        max_memory32_bytes: 1 << 20,
        max_table_elements: 1_000,
        max_data_segments: 10,
        memory64_enabled: false,
        bulk_memory_enabled: false,
        reference_types_enabled: false,
        simd_enabled: false,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        tail_call_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        wide_arithmetic_enabled: false,
        extended_const_enabled: false,
        custom_page_sizes_enabled: false,
        ..wasm_smith::Config::default()
    }
}

fn engines() -> &'static [(String, Box<dyn wasmux::DynEngine>)] {
    static ENGINES: OnceLock<Vec<(String, Box<dyn wasmux::DynEngine>)>> = OnceLock::new();
    ENGINES.get_or_init(differential::engines)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let Ok(mut module) = wasm_smith::Module::new(config(), &mut input) else {
        return;
    };
    if module.ensure_termination(FUEL).is_err() {
        return;
    }
    let command = differential::observable(&module.to_bytes())
        .unwrap_or_else(|e| panic!("a generated module could not be observed: {e}"));
    save("WASMUX_DIFF_EXPORT", &command);
    let disagreements = differential::disagreements(engines(), &command);
    if disagreements.is_empty() {
        return;
    }
    save("WASMUX_DIFF_SAVE", &command);
    panic!("engines disagree:\n{}", disagreements.join("\n"));
});

/// Writes `command` into the directory named by the environment variable `var`, if set.
fn save(var: &str, command: &[u8]) {
    if let Some(dir) = std::env::var_os(var) {
        let name = format!("{:016x}.wasm", fnv(command));
        let _ = std::fs::write(std::path::Path::new(&dir).join(name), command);
    }
}

/// A name for a saved command, stable across runs.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
