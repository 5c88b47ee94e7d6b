//! (e) Memory per instance: the process's resident set with N = 100 live instances of
//! one module, minus what it was before, divided by N, for every compiled-in engine.
//! Each instance is the probe guest's `hold` command: it prints `ready`, then blocks
//! reading stdin, so all N are alive at once when the resident set is read.

// Benchmark code: a failed setup should stop the run loudly.
#![allow(clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, PipeReader, PipeWriter};
use std::os::fd::OwnedFd;

use wasmux::{DynEngine, RunControl, RunSpec, StdioStream, WasmBinary};
use wasmux_conformance::workload::{core_module_binary, resident_bytes};

const INSTANCES: usize = 100;

/// A held run: its stdin (close it to end the run) and its stdout (says `ready`).
fn hold_spec(wasm: &WasmBinary) -> (RunSpec, PipeWriter, BufReader<PipeReader>) {
    let (stdin_read, stdin_write) = std::io::pipe().expect("a pipe");
    let (stdout_read, stdout_write) = std::io::pipe().expect("a pipe");
    let mut spec = RunSpec::new(wasm.clone());
    spec.args = vec!["probe.wasm".into(), "hold".into()];
    spec.stdio.stdin = StdioStream::from(OwnedFd::from(stdin_read));
    spec.stdio.stdout = StdioStream::from(OwnedFd::from(stdout_write));
    spec.stdio.stderr = StdioStream::Null;
    (spec, stdin_write, BufReader::new(stdout_read))
}

/// Runs `count` held instances at once; returns the resident set while all are live.
fn live_resident(module: &wasmux::LoadedModule, wasm: &WasmBinary, count: usize) -> u64 {
    std::thread::scope(|scope| {
        let mut held = Vec::new();
        for _ in 0..count {
            let (spec, stdin, stdout) = hold_spec(wasm);
            let run = scope.spawn(move || module.run(spec, &RunControl::new()));
            held.push((stdin, stdout, run));
        }
        for (_, stdout, _) in &mut held {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("the guest's stdout");
            assert_eq!(line, "ready\n");
        }
        let resident = resident_bytes();
        for (stdin, _, run) in held {
            drop(stdin);
            let status = run.join().expect("the run thread").expect("the run");
            assert!(status.success(), "{status}");
        }
        resident
    })
}

fn measure(name: &str, engine: &dyn DynEngine, wasm: &WasmBinary) {
    let module = engine.load(wasm).expect("probe loads");
    // A first round pays the one-time costs (thread pools, lazy tables, allocator arenas).
    live_resident(&module, wasm, INSTANCES);
    let before = resident_bytes();
    let live = live_resident(&module, wasm, INSTANCES);
    let per_instance = live.saturating_sub(before) / INSTANCES as u64;
    println!(
        "e-memory-per-instance/{name}: {:.0} KiB per live instance (RSS {:.1} MiB idle, {:.1} MiB with {INSTANCES} live)",
        per_instance as f64 / 1024.0,
        before as f64 / 1048576.0,
        live as f64 / 1048576.0,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: run once either way.
    let wasm = core_module_binary("probe");
    for entry in wasmux::ENGINES {
        let engine = wasmux::engine_by_name(entry.name).expect("the engine starts");
        measure(entry.name, engine.as_ref(), &wasm);
    }
    #[cfg(feature = "wasmtime")]
    {
        let pooling = wasmux::EngineOptions::new().with_pooling(INSTANCES as u32 + 1);
        let engine = wasmux::engine_with_options("wasmtime", &pooling).expect("a pooled engine");
        measure("wasmtime-pooled", engine.as_ref(), &wasm);
    }
}
