//! Runs of small hand-written modules (the conformance suite runs the
//! real guests, and the bad modules every engine must refuse).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmux_core::{
    DynEngine, Error, ExitStatus, RunControl, RunSpec, SIGKILL, TrapKind, WasmBinary, WasmKind,
};

use super::*;

fn binary(wat: &str) -> WasmBinary {
    WasmBinary {
        bytes: Arc::from(wat::parse_str(wat).unwrap()),
        kind: WasmKind::CoreModule,
        origin: "test.wasm".into(),
    }
}

/// Runs `wat` with a deadline and returns how it ended.
fn run(wat: &str, timeout: Duration) -> ExitStatus {
    let wasm = binary(wat);
    let module = WamrEngine::new().unwrap().load(&wasm).unwrap();
    let mut spec = RunSpec::new(wasm);
    spec.limits.timeout = Some(timeout);
    let started = Instant::now();
    let status = module.run(spec, &RunControl::new()).unwrap();
    // Liveness only: the run must end at all.
    assert!(started.elapsed() < Duration::from_secs(30));
    status
}

fn trap_kind_of(status: &ExitStatus) -> TrapKind {
    match status {
        ExitStatus::Trapped { kind, .. } => *kind,
        other => panic!("not a trap: {other:?}"),
    }
}

const EXIT_WITH: &str = r#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start") (call $exit (i32.const CODE))))"#;

#[test]
fn the_descriptor_names_the_linked_wamr_release() {
    WamrEngine::new().unwrap();
    let (major, minor, patch) = ffi::version();
    assert_eq!(DESCRIPTOR.version, format!("{major}.{minor}.{patch}"));
}

#[test]
fn exit_codes_keep_all_their_bits() {
    let status = run(&EXIT_WITH.replace("CODE", "70000"), Duration::from_secs(10));
    assert_eq!(status, ExitStatus::Exited(70000));
}

#[test]
fn traps_are_mapped_to_their_kinds() {
    let cases = [
        ("(unreachable)", TrapKind::Unreachable),
        (
            "(drop (i32.div_u (i32.const 1) (i32.const 0)))",
            TrapKind::IntegerDivideByZero,
        ),
        (
            "(drop (i32.load (i32.const 70000)))",
            TrapKind::MemoryOutOfBounds,
        ),
        (
            "(drop (i32.trunc_f32_s (f32.const nan)))",
            TrapKind::BadConversionToInteger,
        ),
    ];
    for (body, expected) in cases {
        let wat = format!(r#"(module (memory 1) (func (export "_start") {body}))"#);
        let status = run(&wat, Duration::from_secs(10));
        assert_eq!(trap_kind_of(&status), expected, "{body}: {status:?}");
    }
}

#[test]
fn unbounded_recursion_is_a_stack_overflow_not_a_crash() {
    let wat = r#"(module
        (func $f (param i32) (result i32) (i32.add (call $f (local.get 0)) (local.get 0)))
        (func (export "_start") (drop (call $f (i32.const 1)))))"#;
    let status = run(wat, Duration::from_secs(20));
    assert_eq!(trap_kind_of(&status), TrapKind::StackOverflow, "{status:?}");
}

#[test]
fn a_spinning_loop_is_killed_by_the_deadline() {
    let wat = r#"(module (func (export "_start") (loop $l (br $l))))"#;
    let started = Instant::now();
    let status = run(wat, Duration::from_millis(200));
    assert_eq!(status, ExitStatus::Killed(SIGKILL));
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn one_module_runs_on_many_threads_at_once() {
    // WAMR's runtime is process-global: concurrent instantiation and runs of one
    // module, and loads of others, must not disturb each other.
    let engine = WamrEngine::new().unwrap();
    let shared = Arc::new(
        engine
            .load(&binary(&EXIT_WITH.replace("CODE", "7")))
            .unwrap(),
    );
    let threads: Vec<_> = (0..16u32)
        .map(|n| {
            let (engine, shared) = (engine.clone(), Arc::clone(&shared));
            std::thread::spawn(move || {
                let own = binary(&EXIT_WITH.replace("CODE", &(100 + n).to_string()));
                let own_status = engine
                    .load(&own)
                    .unwrap()
                    .run(RunSpec::new(own), &RunControl::new())
                    .unwrap();
                let wasm = binary(&EXIT_WITH.replace("CODE", "7"));
                let shared_status = shared.run(RunSpec::new(wasm), &RunControl::new()).unwrap();
                (n, own_status, shared_status)
            })
        })
        .collect();
    for thread in threads {
        let (n, own, shared) = thread.join().unwrap();
        assert_eq!(own, ExitStatus::Exited(100 + n));
        assert_eq!(shared, ExitStatus::Exited(7));
    }
}

#[test]
fn a_missing_entry_function_is_an_error_not_a_trap() {
    let wasm = binary(r#"(module (func (export "main")))"#);
    let module = WamrEngine::new().unwrap().load(&wasm).unwrap();
    let error = module
        .run(RunSpec::new(wasm), &RunControl::new())
        .err()
        .unwrap();
    assert!(matches!(error, Error::EntryFunction { .. }), "{error}");
}
