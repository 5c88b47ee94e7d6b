//! Module loading on each compiled-in engine: arbitrary bytes and mutations of valid
//! modules (seed the corpus with the conformance guests, see docs/reliability.md). The
//! first byte picks the engine; the rest is sniffed and loaded as a runtime would.
//! Loading must return a module or an error: never panic, crash or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn engines() -> &'static [Box<dyn wasmux::DynEngine>] {
    static ENGINES: OnceLock<Vec<Box<dyn wasmux::DynEngine>>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        wasmux::ENGINES
            .iter()
            .filter_map(|entry| wasmux::engine_by_name(entry.name).ok())
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, bytes)) = data.split_first() else { return };
    let engines = engines();
    let engine = &engines[usize::from(choice) % engines.len()];
    if let Ok(wasmux::Sniffed::Wasm(wasm)) = wasmux::sniff(bytes.to_vec(), "fuzz.wasm") {
        let _ = engine.load(&wasm);
    }
});
