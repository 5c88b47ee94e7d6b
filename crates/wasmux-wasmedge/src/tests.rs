//! Runs of small hand-written modules in both execution modes (the
//! conformance suite runs the real guests, and the bad modules every engine must
//! refuse).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmux_core::{
    DynEngine, ExitStatus, RunControl, RunSpec, SIGKILL, TrapKind, WasmBinary, WasmKind,
};

use super::*;

fn binary(wat: &str) -> WasmBinary {
    WasmBinary {
        bytes: Arc::from(wat::parse_str(wat).unwrap()),
        kind: WasmKind::CoreModule,
        origin: "test.wasm".into(),
    }
}

fn engines() -> [WasmEdgeEngine; 2] {
    [
        WasmEdgeEngine::new().unwrap(),
        WasmEdgeEngine::aot().unwrap(),
    ]
}

/// Runs `wat` on `engine` with a deadline and returns how it ended.
fn run(engine: &WasmEdgeEngine, wat: &str, timeout: Duration) -> ExitStatus {
    let wasm = binary(wat);
    let module = engine.load(&wasm).unwrap();
    let mut spec = RunSpec::new(wasm);
    spec.limits.timeout = Some(timeout);
    let started = Instant::now();
    let status = module.run(spec, &RunControl::new()).unwrap();
    // Liveness only: the run must end at all.
    assert!(started.elapsed() < Duration::from_secs(30));
    status
}

#[test]
fn both_modes_report_their_own_names() {
    let [interpreter, aot] = engines();
    assert_eq!(
        (interpreter.name(), aot.name()),
        ("wasmedge", "wasmedge-aot")
    );
}

#[test]
fn exit_codes_keep_all_their_bits() {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start") (call $exit (i32.const 70000))))"#;
    for engine in engines() {
        let status = run(&engine, wat, Duration::from_secs(10));
        assert_eq!(status, ExitStatus::Exited(70000), "{}", engine.name());
    }
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
    ];
    for engine in engines() {
        for (body, expected) in &cases {
            let wat = format!(r#"(module (memory 1) (func (export "_start") {body}))"#);
            let status = run(&engine, &wat, Duration::from_secs(10));
            let kind = match &status {
                ExitStatus::Trapped { kind, .. } => *kind,
                other => panic!("{}: {body}: {other:?}", engine.name()),
            };
            assert_eq!(kind, *expected, "{}: {body}", engine.name());
        }
    }
}

#[test]
fn unbounded_recursion_is_a_stack_overflow_not_a_crash() {
    // Through call_indirect, so LLVM cannot turn it into a loop: WasmEdge's AOT code
    // alone would overflow the native stack and crash the process.
    let wat = r#"(module
        (type $t (func (param i32) (result i32)))
        (table 1 funcref) (elem (i32.const 0) $f)
        (func $f (type $t)
            (i32.add (call_indirect (type $t) (local.get 0) (i32.const 0)) (local.get 0)))
        (func (export "_start") (drop (call $f (i32.const 1)))))"#;
    for engine in engines() {
        let status = run(&engine, wat, Duration::from_secs(20));
        assert!(
            matches!(
                &status,
                ExitStatus::Trapped {
                    kind: TrapKind::StackOverflow,
                    ..
                }
            ),
            "{}: {status:?}",
            engine.name()
        );
    }
}

#[test]
fn loops_and_looping_recursion_are_killed_by_the_deadline() {
    // The second one is recursion LLVM turns into a loop, which WasmEdge's own
    // cancellation never stops in AOT code.
    let spinners = [
        r#"(module (func (export "_start") (loop $l (br $l))))"#,
        r#"(module (func $f (result i32) (i32.add (call $f) (i32.const 1)))
                   (func (export "_start") (drop (call $f))))"#,
    ];
    for engine in engines() {
        for wat in spinners {
            let status = run(&engine, wat, Duration::from_millis(200));
            let stopped = status == ExitStatus::Killed(SIGKILL)
                || matches!(
                    &status,
                    ExitStatus::Trapped {
                        kind: TrapKind::StackOverflow,
                        ..
                    }
                );
            assert!(stopped, "{}: {wat}: {status:?}", engine.name());
        }
    }
}

#[test]
fn concurrent_aot_compiles_all_succeed() {
    // Unserialised, WasmEdge's compiler corrupted concurrent outputs and its lld ended
    // the process; distinct modules, so no compile can be shared.
    let engine = Arc::new(WasmEdgeEngine::aot().unwrap());
    let threads: Vec<_> = (0..8)
        .map(|code| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                let wat = format!(
                    r#"(module
                        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                        (memory (export "memory") 1)
                        (func (export "_start") (call $exit (i32.const {code}))))"#
                );
                run(&engine, &wat, Duration::from_secs(10))
            })
        })
        .collect();
    for (code, thread) in threads.into_iter().enumerate() {
        assert_eq!(thread.join().unwrap(), ExitStatus::Exited(code as u32));
    }
}

#[test]
fn the_descriptors_name_the_wasmedge_this_build_links() {
    let linked = ffi::library_version();
    for descriptor in [&INTERPRETER, &AOT] {
        let minor = format!("{}.", descriptor.version);
        assert!(
            linked == descriptor.version || linked.starts_with(&minor),
            "libwasmedge {linked}, descriptor {}",
            descriptor.version
        );
    }
}

/// The AOT path (`compile` to a shared library, `load_library`) runs native code: a
/// loop of 100,000 iterations costs the interpreter's counter almost nothing there,
/// and millions of counted instructions interpreted. A module the loader gave back to
/// the interpreter, as 0.14's universal modules silently did, fails the first bound.
#[test]
fn aot_modules_run_native_code_not_the_interpreter() {
    let bytes = wat::parse_str(
        r#"(module (func (export "spin") (local i32)
            (loop
                (local.set 0 (i32.add (local.get 0) (i32.const 1)))
                (br_if 0 (i32.lt_u (local.get 0) (i32.const 100000))))))"#,
    )
    .unwrap();
    let aot = Config::new(Execution::Aot).unwrap();
    let library = compile(&aot, &bytes).unwrap();
    assert_eq!(&library[..4], b"\x7fELF", "a shared library");
    let native = aot.load_library(&library).unwrap();
    let counted = ffi::interpreted_instructions(Execution::Aot, &native, "spin").unwrap();
    assert!(
        counted < 1_000,
        "native code, yet {counted} instructions interpreted"
    );

    let interpreter = Config::new(Execution::Interpreter).unwrap();
    let interpreted = interpreter.load(&bytes).unwrap();
    let counted =
        ffi::interpreted_instructions(Execution::Interpreter, &interpreted, "spin").unwrap();
    assert!(counted > 500_000, "the counter counts: {counted}");
}
