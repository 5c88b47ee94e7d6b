//! Nothing leaks across many wasmer runs. This test is the only one in its binary: it counts
//! the process's threads, and a sibling test running beside it would add its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Seek};

use wasmux_core::{DynEngine, ExitStatus, LoadedModule, RunControl, RunSpec, StdioStream};
use wasmux_wasmer::WasmerEngine;

mod common;
use common::writer;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn two_hundred_runs_leak_no_threads_and_lose_no_output() {
    let engine = WasmerEngine::new().unwrap();
    let module = engine.load(&writer(2)).unwrap();
    let run = |module: &LoadedModule| {
        let mut out = tempfile::tempfile().unwrap();
        let mut spec = RunSpec::new(writer(2));
        spec.stdio.stdout = StdioStream::from(out.try_clone().unwrap());
        let status = module.run(spec, &RunControl::new()).unwrap();
        assert_eq!(status, ExitStatus::Exited(0));
        let mut text = String::new();
        out.rewind().unwrap();
        out.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hi\nhi\n");
    };
    // The first runs start the engine's runtime threads; count after them.
    for _ in 0..5 {
        run(&module);
    }
    let before = threads();
    for _ in 0..200 {
        run(&module);
    }
    let after = threads();
    assert!(
        after <= before,
        "threads grew from {before} to {after} over 200 runs"
    );
}
