//! Limits and control: memory, kill, and isolation of concurrent runs.

use std::path::Path;
use std::time::{Duration, Instant};

use wasmux::{ExitStatus, RunControl, SIGKILL};

use super::probe;
use crate::BundleBuilder;
use crate::suite::{Check, Ctx, RunOptions};

pub fn memory_limit(ctx: &Ctx) -> Check {
    let limit = 32 << 20;
    let small = ctx.write("alloc-8", &probe(&["alloc", "8"]).memory_limit(limit));
    let ran = ctx.run(&small);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(b"allocated 8 MiB\n")?;
    let large = ctx.write("alloc-128", &probe(&["alloc", "128"]).memory_limit(limit));
    let ran = ctx.run(&large);
    ran.expect_status(&ExitStatus::OutOfMemory)?;
    if ran.status()?.exit_code() != 137 {
        return Err("OutOfMemory must exit 137".into());
    }
    Ok(())
}

/// A grow beyond the memory's own maximum fails (-1, as the spec says) and costs nothing
/// of the limit: a later grow within both still succeeds, and the run is not reported as
/// out of memory. The limit is 10 pages, the maximum 5.
pub fn memory_limit_charges_only_grows_that_happen(ctx: &Ctx) -> Check {
    let module = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1 5)
      (func (export "_start")
        (if (i32.ne (memory.grow (i32.const 8)) (i32.const -1))
          (then (call $exit (i32.const 1))))
        (if (i32.ne (memory.grow (i32.const 3)) (i32.const 1))
          (then (call $exit (i32.const 2))))
        (if (i32.ne (memory.grow (i32.const 2)) (i32.const -1))
          (then (call $exit (i32.const 3))))
        (call $exit (i32.const 0))))"#;
    let bundle = ctx.write(
        "grow-past-maximum",
        &BundleBuilder::default()
            .file("/m.wat", module)
            .args(["/m.wat"])
            .memory_limit(10 * 65536),
    );
    ctx.run(&bundle).expect_status(&ExitStatus::Exited(0))
}

pub fn kill(ctx: &Ctx) -> Check {
    let bundle = ctx.write("spin", &probe(&["spin"]));
    let control = RunControl::new();
    let killer = control.clone();
    let started = Instant::now();
    let timer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        killer.kill(SIGKILL);
    });
    let ran = ctx.run_with(
        &bundle,
        RunOptions {
            control: Some(control),
            ..RunOptions::default()
        },
    );
    let took = started.elapsed();
    let _ = timer.join();
    ran.expect_status(&ExitStatus::Killed(SIGKILL))?;
    if ran.status()?.exit_code() != 137 {
        return Err("Killed(SIGKILL) must exit 137".into());
    }
    // A liveness bound: the kill must land, not be fast.
    if took > Duration::from_secs(5) {
        return Err(format!("the kill took {took:?} to stop the guest"));
    }
    Ok(())
}

/// 16 runs of one module on 16 threads, each with its own env and mount: each sees
/// only its own.
pub fn concurrent_isolation(ctx: &Ctx) -> Check {
    let bundles: Vec<_> = (0..16)
        .map(|i| {
            let name = format!("run-{i}");
            let data = ctx.host_dir(&name, "data");
            std::fs::write(data.join("id"), format!("file-{i}")).unwrap_or_else(|e| panic!("{e}"));
            let id = format!("ID=env-{i}");
            ctx.write(
                &name,
                &probe(&["identity"])
                    .env(&[&id])
                    .bind(Path::new("data"), "/data", true),
            )
        })
        .collect();
    let results: Vec<Check> = std::thread::scope(|scope| {
        let handles: Vec<_> = bundles
            .iter()
            .enumerate()
            .map(|(i, bundle)| {
                scope.spawn(move || {
                    let ran = ctx.run(bundle);
                    ran.expect_status(&ExitStatus::Exited(0))?;
                    ran.expect_stdout(format!("env=env-{i} file=file-{i}\n").as_bytes())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("run thread panicked".into()))
            })
            .collect()
    });
    results
        .into_iter()
        .enumerate()
        .try_for_each(|(i, r)| r.map_err(|e| format!("run {i}: {e}")))
}
