//! The attacks of the security audit (docs/reliability.md, "Threat model"), on every
//! engine: a symlink swapped onto the working directory's path while the run starts,
//! device nodes and FIFOs shipped in the image, and a table grown past the memory limit.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{CWD, FileType, Mode, RenameFlags, makedev, mknodat, renameat_with};
use wasmux::{ExitStatus, PrecompileCache};

use super::probe;
use crate::BundleBuilder;
use crate::suite::{Check, Ctx, RunOptions};

/// How many runs race the attacker: the audit escaped within a few dozen.
const RACED_RUNS: usize = 60;

/// The working directory `/vol/w` and a symlink `vol/w_link -> ../..` (relative: in
/// the container it means the root, on the host the bundle directory, which holds
/// `config.json`) are swapped again and again while the victim starts. Its `.` must
/// always be a directory inside the rootfs: `config.json` is never readable.
pub fn symlink_swap_race(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "race",
        &probe(&["try-read", "config.json"])
            .file("/vol/w/in-w", "")
            .cwd("/vol/w"),
    );
    let vol = bundle.join("rootfs/vol");
    std::os::unix::fs::symlink("../..", vol.join("w_link")).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let (stop, vol) = (stop.clone(), vol.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = renameat_with(
                    CWD,
                    vol.join("w"),
                    CWD,
                    vol.join("w_link"),
                    RenameFlags::EXCHANGE,
                );
            }
        })
    };
    // One compile for all the runs (WasmEdge's AOT compile takes seconds).
    let cache = PrecompileCache::open(bundle.join("cache")).map_err(|e| e.to_string())?;
    let mut result = Ok(());
    for run in 0..RACED_RUNS {
        let options = RunOptions {
            cache: Some(cache.clone()),
            ..RunOptions::default()
        };
        let ran = ctx.run_with(&bundle, options);
        if String::from_utf8_lossy(&ran.stdout).contains("READ") {
            result = Err(format!(
                "run {run} read the host's config.json: the guest escaped"
            ));
            break;
        }
        if let Err(e) = ran.expect_stdout(b"config.json: refused\n") {
            result = Err(format!("run {run}: {e}"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = attacker.join();
    result
}

/// An image's device nodes (the kernel log, a raw disk) and a FIFO are refused; the
/// default devices open. Creating the nodes needs CAP_MKNOD: the suite runs as root,
/// as image unpackers do.
pub fn device_nodes(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "devices",
        &probe(&[
            "try-read",
            "/kmsg",
            "/disk",
            "/fifo",
            "/sub/fifo-link",
            "/null",
        ])
        .file("/sub/.keep", ""),
    );
    let rootfs = bundle.join("rootfs");
    let node = |name: &str, kind: FileType, dev: u64| {
        mknodat(
            CWD,
            rootfs.join(name),
            kind,
            Mode::from_raw_mode(0o666),
            dev,
        )
        .map_err(|e| format!("creating {name} (the suite must run as root): {e}"))
    };
    node("kmsg", FileType::CharacterDevice, makedev(1, 11))?;
    node("disk", FileType::BlockDevice, makedev(7, 0))?;
    node("fifo", FileType::Fifo, 0)?;
    node("null", FileType::CharacterDevice, makedev(1, 3))?;
    std::os::unix::fs::symlink("../fifo", rootfs.join("sub/fifo-link"))
        .map_err(|e| e.to_string())?;
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(
        b"/kmsg: refused\n/disk: refused\n/fifo: refused\n/sub/fifo-link: refused\n/null: READ 0 bytes\n",
    )
}

/// `table.grow` of 100M elements (800 MB) under a 16 MiB limit must fail (-1), as a
/// `memory.grow` past the limit does. The guest exits 3 if it was refused, 0 if not.
pub fn table_limit(ctx: &Ctx) -> Check {
    const GROW_TABLE: &str = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (table 1 funcref)
      (func (export "_start")
        (call $exit
          (select (i32.const 3) (i32.const 0)
            (i32.eq (table.grow (ref.null func) (i32.const 100000000)) (i32.const -1))))))"#;
    let bundle = ctx.write(
        "table",
        &BundleBuilder::default()
            .file("/grow.wat", GROW_TABLE)
            .args(["/grow.wat"])
            .memory_limit(16 << 20),
    );
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(3))
}

/// The entrypoint must be a regular file: a FIFO would block the run for ever.
pub fn fifo_entrypoint(ctx: &Ctx) -> Check {
    let bundle = ctx.write("fifo-entry", &BundleBuilder::default().args(["/m.wasm"]));
    let path = bundle.join("rootfs/m.wasm");
    mknodat(
        CWD,
        Path::new(&path),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .map_err(|e| e.to_string())?;
    let ran = ctx.run(&bundle);
    ran.expect_error(127, "FIFO")
}
