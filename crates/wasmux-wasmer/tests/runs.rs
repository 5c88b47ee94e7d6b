//! The wasmer backend's own checks, beyond the conformance suite: nothing leaks across
//! many runs, and a kill stops a guest that spends its time in host calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Seek};
use std::time::{Duration, Instant};

use wasmux_core::{
    DynEngine, ExitStatus, LoadedModule, RunControl, RunSpec, SIGKILL, StdioStream, WasmBinary,
};
use wasmux_wasmer::WasmerEngine;

/// Writes "hi\n" to stdout through `fd_write`, `times` times (0: forever).
fn writer(times: u32) -> WasmBinary {
    let wat = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write"
            (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "hi\n")
          (func (export "_start") (local $n i32)
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 3))
            (loop $again
              (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
              (local.set $n (i32.add (local.get $n) (i32.const 1)))
              (br_if $again (i32.or (i32.eqz (i32.const {times}))
                                    (i32.lt_u (local.get $n) (i32.const {times})))))))"#
    );
    WasmBinary::new(wat::parse_str(wat).unwrap(), "writer.wat").unwrap()
}

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

#[test]
fn kill_stops_a_guest_that_lives_in_host_calls() {
    let engine = WasmerEngine::new().unwrap();
    let module = engine.load(&writer(0)).unwrap();
    let mut spec = RunSpec::new(writer(0));
    spec.stdio.stdout = StdioStream::Null;
    spec.stdio.stderr = StdioStream::Null;
    let control = RunControl::new();
    let killer = control.clone();
    let started = Instant::now();
    let kill = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        killer.kill(SIGKILL);
    });
    let status = module.run(spec, &control).unwrap();
    kill.join().unwrap();
    assert_eq!(status, ExitStatus::Killed(SIGKILL));
    // Liveness only: the interrupt is retried until it lands between host calls.
    assert!(started.elapsed() < Duration::from_secs(10));
}
