//! 2,000 sequential runs of one loaded hello module on every engine: the process's
//! resident set and open file descriptors at the end must be within 10% of what they
//! were after the first 100 runs (a leak per run would show as steady growth).
//! `WASMUX_STRESS_RUNS=N` runs N instead (the long version).

use std::io::{Read, Seek};

use wasmux::{LoadedModule, RunControl, RunSpec, StdioStream};
use wasmux_conformance::workload::{fresh_spec, hello_spec, open_fds, resident_bytes};

const GREETING: &[u8] = b"Hello from a Wasm container, run by wasmux!\n";

/// One run; every `check`-th run captures stdout and compares it exactly.
fn run_once(module: &LoadedModule, template: &RunSpec, check: bool) {
    let mut spec = fresh_spec(template);
    let mut out = check.then(|| tempfile::tempfile().unwrap());
    spec.stdio.stdout = match &out {
        Some(file) => StdioStream::from(file.try_clone().unwrap()),
        None => StdioStream::Null,
    };
    let status = module.run(spec, &RunControl::new()).unwrap();
    assert!(status.success(), "{status}");
    if let Some(file) = &mut out {
        let mut got = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut got).unwrap();
        assert_eq!(got, GREETING);
    }
}

#[test]
fn sequential_runs_keep_memory_and_descriptors_flat_on_every_engine() {
    let _serial = crate::serial();
    let runs: usize = std::env::var("WASMUX_STRESS_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
        .max(200);
    let template = hello_spec();
    for entry in wasmux::ENGINES {
        let engine = wasmux::engine_by_name(entry.name).unwrap();
        let module = engine.load(&template.wasm).unwrap();
        let started = std::time::Instant::now();
        let mut after_100 = (0, 0);
        for i in 1..=runs {
            run_once(&module, &template, i % 100 == 0);
            if i == 100 {
                after_100 = (resident_bytes() / 1024, open_fds());
            }
        }
        let end = (resident_bytes() / 1024, open_fds());
        eprintln!(
            "{}: {runs} runs in {:.1?}; RSS {} KiB after 100, {} KiB after {runs}; fds {} then {}",
            entry.name,
            started.elapsed(),
            after_100.0,
            end.0,
            after_100.1,
            end.1
        );
        assert!(
            end.0 * 10 <= after_100.0 * 11,
            "{}: RSS grew from {} to {} KiB",
            entry.name,
            after_100.0,
            end.0
        );
        assert!(
            end.1 * 10 <= after_100.1 * 11,
            "{}: open descriptors grew from {} to {}",
            entry.name,
            after_100.1,
            end.1
        );
    }
}
