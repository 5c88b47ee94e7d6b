//! The process contract: greeting, argv, env, exit codes, traps, entry points, kinds.

use wasmux::{ExitStatus, TrapKind};

use super::probe;
use crate::suite::{Check, Ctx};
use crate::{BundleBuilder, guests};

const GREETING: &[u8] = b"Hello from a Wasm container, run by wasmux!\n";

pub fn hello(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "hello",
        &BundleBuilder::with_module(&guests::core_module("hello"), &[]),
    );
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(GREETING)?;
    crate::suite::expect_bytes("stderr", &ran.stderr, b"")
}

/// Compute-bound code (a prime sieve over 2 million numbers) gets the exact answer: a
/// check on each engine's code generation (wasmer's singlepass, wasm3's interpreter...).
pub fn compute(ctx: &Ctx) -> Check {
    let bundle = ctx.write("primes", &probe(&["primes", "2000000"]));
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(b"148933 2948372267021563838\n")
}

pub fn argv_verbatim(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "argv",
        &probe(&["args", "with space", "ünïcødé ✓", ""]).args([
            "./probe.wasm",
            "args",
            "with space",
            "ünïcødé ✓",
            "",
        ]),
    );
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(
        "0:\"./probe.wasm\"\n1:\"args\"\n2:\"with space\"\n3:\"ünïcødé ✓\"\n4:\"\"\n".as_bytes(),
    )
}

/// The spec's variables exactly: the test process's own (PATH, HOME, CARGO_*, ...) must
/// not appear.
pub fn env_exact(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "env",
        &probe(&["env"]).env(&["PLAIN=1", "WITH_EQUALS=a=b=c", "EMPTY="]),
    );
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(b"EMPTY=\"\"\nPLAIN=\"1\"\nWITH_EQUALS=\"a=b=c\"\n")
}

pub fn exit_codes(ctx: &Ctx) -> Check {
    for code in [0u32, 1, 7, 42, 255] {
        let bundle = ctx.write(
            &format!("exit-{code}"),
            &probe(&["exit", &code.to_string()]),
        );
        let ran = ctx.run(&bundle);
        ran.expect_status(&ExitStatus::Exited(code))?;
        if ran.status()?.exit_code() != code as u8 {
            return Err(format!("proc_exit({code}) must exit {code}"));
        }
    }
    let bundle = ctx.write("return", &probe(&["return"]));
    ctx.run(&bundle).expect_status(&ExitStatus::Exited(0))
}

/// Integer division by zero as a real `i32.div_s` trap (Rust would panic first).
const DIV_ZERO_WAT: &str = r#"(module
  (func $div (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "_start") (drop (call $div (i32.const 1) (i32.const 0)))))"#;

pub fn traps(ctx: &Ctx) -> Check {
    for (arg, kind) in [
        ("unreachable", TrapKind::Unreachable),
        ("oob", TrapKind::MemoryOutOfBounds),
        ("stack", TrapKind::StackOverflow),
    ] {
        let bundle = ctx.write(&format!("trap-{arg}"), &probe(&["trap", arg]));
        ctx.run(&bundle)
            .expect_trap(kind)
            .map_err(|e| format!("{arg}: {e}"))?;
    }
    let bundle = ctx.write(
        "trap-div0",
        &BundleBuilder::default()
            .file("/div.wat", DIV_ZERO_WAT)
            .args(["/div.wat"]),
    );
    ctx.run(&bundle)
        .expect_trap(TrapKind::IntegerDivideByZero)
        .map_err(|e| format!("div0: {e}"))
}

pub fn clocks_random(ctx: &Ctx) -> Check {
    let bundle = ctx.write("clock", &probe(&["clock"]));
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    let out = String::from_utf8_lossy(&ran.stdout).into_owned();
    let guest_secs: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("realtime "))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no realtime line in {out:?}"))?;
    let host_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    if host_secs.abs_diff(guest_secs) > 5 {
        return Err(format!("guest realtime {guest_secs}, host {host_secs}"));
    }
    if !out.contains("monotonic ok\n") {
        return Err(format!("monotonic check failed: {out:?}"));
    }
    let bundle = ctx.write("random", &probe(&["random"]));
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    let draws: Vec<String> = String::from_utf8_lossy(&ran.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    match draws.as_slice() {
        [a, b] if a != b && a.len() == 64 && !a.chars().all(|c| c == '0') => Ok(()),
        other => Err(format!("random_get draws do not vary: {other:?}")),
    }
}

pub fn custom_entry(ctx: &Ctx) -> Check {
    let bundle = ctx.write("entry", &probe(&[]).args(["/probe.wasm#hello_export"]));
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(b"hello from an export\n")
}

/// A reactor: `_initialize` sets a flag that its `run` export reports on stdout.
const REACTOR_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (data (i32.const 16) "initialized\n")
  (data (i32.const 32) "not initialized\n")
  (func (export "_initialize") (global.set $ready (i32.const 1)))
  (func (export "run")
    (if (global.get $ready)
      (then (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 12)))
      (else (i32.store (i32.const 0) (i32.const 32)) (i32.store (i32.const 4) (i32.const 16))))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// A reactor's `_initialize` runs before the custom entry (`path#run`), on every engine.
pub fn reactor_entry(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "reactor",
        &BundleBuilder::default()
            .file("/reactor.wat", REACTOR_WAT)
            .args(["/reactor.wat#run"])
            .annotation("module.wasm.image/variant", "compat"),
    );
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(b"initialized\n")
}

/// A WAT hello that writes through `fd_write` and exits 3 through `proc_exit`.
const HELLO_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from WAT\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 3))))"#;

pub fn wat_entrypoint(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "wat",
        &BundleBuilder::default()
            .file("/hello.wat", HELLO_WAT)
            .args(["/hello.wat"])
            .annotation("module.wasm.image/variant", "compat"),
    );
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(3))?;
    ran.expect_stdout(b"hello from WAT\n")
}

pub fn component(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "component",
        &BundleBuilder::with_module(&guests::component("hello"), &[]),
    );
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(GREETING)
}
