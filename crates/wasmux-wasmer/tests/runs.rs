//! The wasmer backend's own checks, beyond the conformance suite: a kill stops a guest that
//! spends its time in host calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wasmux_core::{DynEngine, ExitStatus, RunControl, RunSpec, SIGKILL, StdioStream};
use wasmux_wasmer::WasmerEngine;

mod common;
use common::writer;

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
