//! Guests that spin without a loop instruction still end: recursion that never gets
//! deep, and tail calls (both are polled at function entry).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmux_core::{
    DynEngine, ExitStatus, RunControl, RunSpec, SIGKILL, TrapKind, WasmBinary, WasmKind,
};
use wasmux_wasm3::Wasm3Engine;

/// Runs `wat` with a 200 ms deadline and returns how it ended.
fn run_with_deadline(wat: &str) -> ExitStatus {
    let wasm = WasmBinary {
        bytes: Arc::from(wat::parse_str(wat).unwrap()),
        kind: WasmKind::CoreModule,
        origin: "spin.wasm".into(),
    };
    let module = Wasm3Engine::new().unwrap().load(&wasm).unwrap();
    let mut spec = RunSpec::new(wasm);
    spec.limits.timeout = Some(Duration::from_millis(200));
    let started = Instant::now();
    let status = module.run(spec, &RunControl::new()).unwrap();
    // Liveness only: the run must end at all.
    assert!(started.elapsed() < Duration::from_secs(10));
    status
}

#[test]
fn a_tail_call_loop_ends() {
    // This wasm3 build grows its stack on `return_call`: the loop overflows unless the
    // deadline, polled at each entry, comes first. It never runs on.
    let status = run_with_deadline(
        r#"(module
            (func $spin (return_call $spin))
            (func (export "_start") (call $spin)))"#,
    );
    let overflow =
        matches!(&status, ExitStatus::Trapped { kind, .. } if *kind == TrapKind::StackOverflow);
    assert!(
        overflow || status == ExitStatus::Killed(SIGKILL),
        "{status:?}"
    );
}

#[test]
fn shallow_endless_recursion_is_stopped() {
    // Each call recurses twice to depth 40: 2^40 calls, never deep, never a loop.
    let status = run_with_deadline(
        r#"(module
            (func $fan (param i32)
                (if (i32.gt_u (local.get 0) (i32.const 0)) (then
                    (call $fan (i32.sub (local.get 0) (i32.const 1)))
                    (call $fan (i32.sub (local.get 0) (i32.const 1))))))
            (func (export "_start") (call $fan (i32.const 40))))"#,
    );
    assert_eq!(status, ExitStatus::Killed(SIGKILL));
}
