//! The rewrite checked by running its output on wasmtime, with test doubles for the
//! three guard imports.

use wasmtime::{Caller, Engine, Instance, Linker, Module, Store};

use crate::instrument::{DEEP, GROW, GROW_TABLE, GUARD_MODULE, POLL};
use crate::{Guards, instrument};

fn imports_of(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let wasmparser::Payload::ImportSection(s) = payload.unwrap() {
            for import in s.into_imports() {
                let import = import.unwrap();
                names.push(format!("{}::{}", import.module, import.name));
            }
        }
    }
    names
}

/// What the guard imports saw during a run.
#[derive(Default)]
struct Seen {
    polls: u32,
    grows: Vec<u32>,
    table_grows: Vec<u32>,
    too_deep: bool,
    /// `grow` answers with this delta instead of the one asked for, when set.
    refuse_grow: bool,
}

/// Instruments `wat`, runs its `run` export and returns its i32 result (or the trap
/// message) with what the guards saw.
fn run(wat: &str, guards: Guards) -> (Result<i32, String>, Seen) {
    let out = instrument(&wat::parse_str(wat).unwrap(), guards).unwrap();
    wasmparser::Validator::new()
        .validate_all(&out.bytes)
        .unwrap();
    let engine = Engine::default();
    let module = Module::new(&engine, &out.bytes).unwrap();
    let mut linker = Linker::<Seen>::new(&engine);
    linker
        .func_wrap(GUARD_MODULE, POLL, |mut c: Caller<'_, Seen>| {
            c.data_mut().polls += 1;
            10_000
        })
        .unwrap();
    linker
        .func_wrap(GUARD_MODULE, GROW, |mut c: Caller<'_, Seen>, delta: u32| {
            c.data_mut().grows.push(delta);
            if c.data().refuse_grow {
                u32::MAX
            } else {
                delta
            }
        })
        .unwrap();
    linker
        .func_wrap(
            GUARD_MODULE,
            GROW_TABLE,
            |mut c: Caller<'_, Seen>, delta: u32| {
                c.data_mut().table_grows.push(delta);
                if c.data().refuse_grow {
                    u32::MAX
                } else {
                    delta
                }
            },
        )
        .unwrap();
    linker
        .func_wrap(GUARD_MODULE, DEEP, |mut c: Caller<'_, Seen>| {
            c.data_mut().too_deep = true;
            Err::<(), _>(wasmtime::Error::msg("too deep"))
        })
        .unwrap();
    let mut store = Store::new(&engine, Seen::default());
    store.data_mut().refuse_grow = wat.contains(";; refuse");
    let instance: Instance = linker.instantiate(&mut store, &module).unwrap();
    let f = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let result = f.call(&mut store, ()).map_err(|e| format!("{e:?}"));
    (result, store.into_data())
}

const DEPTH: Guards = Guards {
    max_depth: Some(100),
};

#[test]
fn references_survive_the_shifted_function_indices() {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory 1)
        (table 1 funcref)
        (elem (i32.const 0) $seven)
        (func $seven (result i32) (i32.const 7))
        (func (export "run") (result i32)
            (i32.add (call_indirect (result i32) (i32.const 0)) (call $seven))))"#;
    let out = instrument(&wat::parse_str(wat).unwrap(), DEPTH).unwrap();
    assert_eq!(
        imports_of(&out.bytes),
        [
            "wasi_snapshot_preview1::proc_exit",
            "wasmux_guard::poll",
            "wasmux_guard::grow",
            "wasmux_guard::deep",
            "wasmux_guard::grow_table"
        ]
    );
    assert_eq!(out.initial.memory, 65536);
    assert_eq!(out.initial.table_elements, 1);
    let wat_without_import = wat.replace(
        r#"(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))"#,
        "",
    );
    assert_eq!(run(&wat_without_import, DEPTH).0, Ok(14));
}

#[test]
fn loops_spend_fuel_and_poll_when_it_runs_out() {
    let wat = r#"(module (func (export "run") (result i32) (local $i i32)
        (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
                 (br_if $l (i32.lt_u (local.get $i) (i32.const 25000))))
        (local.get $i)))"#;
    let (result, seen) = run(wat, Guards::default());
    assert_eq!(result, Ok(25000));
    assert_eq!(seen.polls, 2, "25,001 units of fuel at 10,000 per poll");
}

/// Tables hold host memory too: `table.grow` asks the budget first, like
/// `memory.grow`, and a refusal makes it fail with -1.
#[test]
fn table_grow_asks_first_and_a_refusal_fails_the_grow() {
    let wat = r#"(module (table 1 funcref)
        (func (export "run") (result i32)
            (table.grow (ref.null func) (i32.const 1000))))"#;
    let (result, seen) = run(wat, Guards::default());
    assert_eq!((result, seen.table_grows), (Ok(1), vec![1000]));
    let (result, _) = run(&format!("{wat} ;; refuse"), Guards::default());
    assert_eq!(result, Ok(-1));
}

#[test]
fn memory_grow_asks_first_and_a_refusal_fails_the_grow() {
    let wat = r#"(module (memory 1)
        (func (export "run") (result i32) (memory.grow (i32.const 3))))"#;
    let (result, seen) = run(wat, Guards::default());
    assert_eq!((result, seen.grows), (Ok(1), vec![3]));
    let (result, _) = run(&format!("{wat} ;; refuse"), Guards::default());
    assert_eq!(result, Ok(-1));
}

/// A grow past the memory's own maximum (or past 4 GiB) fails without asking the host,
/// so the memory limit never counts it as a denial (as on wasmtime and wasmer); a grow
/// within the maximum is asked as before. A maximum of 0 pages holds too, whatever the
/// engine makes of it (wasm3 reads it as none), and a grow by 0 still succeeds.
#[test]
fn a_grow_past_the_maximum_is_refused_without_asking_the_host() {
    for (memory, delta, expected, asked) in [
        ("(memory 0 0)", 1, -1, vec![]),
        ("(memory 0 0)", 0, 0, vec![0]),
        ("(memory 1 5)", 8, -1, vec![]),
        ("(memory 1 5)", 4, 1, vec![4]),
        ("(memory 1)", 70_000, -1, vec![]),
        ("(memory 1)", 3, 1, vec![3]),
    ] {
        let wat = format!(
            r#"(module {memory}
                (func (export "run") (result i32) (memory.grow (i32.const {delta}))))"#
        );
        let (result, seen) = run(&wat, Guards::default());
        assert_eq!(
            (result, seen.grows),
            (Ok(expected), asked),
            "{memory} grown by {delta}"
        );
    }
}

#[test]
fn unbounded_recursion_hits_the_depth_guard() {
    let wat = r#"(module (func $f (export "run") (result i32)
        (i32.add (call $f) (i32.const 1))))"#;
    let (result, seen) = run(wat, DEPTH);
    assert!(result.is_err() && seen.too_deep);
}

#[test]
fn the_maximum_depth_is_exact() {
    // `run` and `$down` 98..=0: 100 activations, the maximum; one more is too deep.
    let wat = r#"(module
        (func $down (param $n i32) (result i32)
            (if (result i32) (local.get $n)
                (then (i32.add (call $down (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))
                (else (i32.const 0))))
        (func (export "run") (result i32) (call $down (i32.const 98))))"#;
    let (result, seen) = run(wat, DEPTH);
    assert_eq!(result, Ok(98));
    assert!(!seen.too_deep);
    let (result, seen) = run(&wat.replace("98", "99"), DEPTH);
    assert!(result.is_err() && seen.too_deep);
}

#[test]
fn every_way_out_of_a_function_uncounts_it() {
    // Each helper leaves differently: falling off the end, `return`, a branch to the
    // function's own label, `br_table` to it, and a tail call. A thousand calls of each
    // stay at depth 2 only if every exit uncounts.
    let wat = r#"(module
        (func $fall (result i32) (i32.const 1))
        (func $ret (result i32) (return (i32.const 1)))
        (func $br (result i32) (br 0 (i32.const 1)))
        (func $table (result i32) (i32.const 1) (br_table 0 0 (i32.const 0)))
        (func $tail (result i32) (return_call $fall))
        (func $pair (result i32 i64) (i32.const 1) (i64.const 2) (br 0))
        (func (export "run") (result i32) (local $i i32) (local $sum i32)
            (loop $l
                (local.set $sum (i32.add (local.get $sum) (call $fall)))
                (local.set $sum (i32.add (local.get $sum) (call $ret)))
                (local.set $sum (i32.add (local.get $sum) (call $br)))
                (local.set $sum (i32.add (local.get $sum) (call $table)))
                (local.set $sum (i32.add (local.get $sum) (call $tail)))
                (call $pair) (drop) (local.get $sum) (i32.add) (local.set $sum)
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
            (local.get $sum)))"#;
    let (result, seen) = run(wat, Guards { max_depth: Some(3) });
    assert_eq!(result, Ok(6000));
    assert!(!seen.too_deep);
}

#[test]
fn a_module_without_imports_or_globals_gets_them() {
    let wat = r#"(module (func (export "run") (result i32) (loop (br 0)) (i32.const 0)))"#;
    let out = instrument(&wat::parse_str(wat).unwrap(), DEPTH).unwrap();
    wasmparser::Validator::new()
        .validate_all(&out.bytes)
        .unwrap();
    assert_eq!(
        imports_of(&out.bytes),
        [
            "wasmux_guard::poll",
            "wasmux_guard::grow",
            "wasmux_guard::deep",
            "wasmux_guard::grow_table"
        ]
    );
}
