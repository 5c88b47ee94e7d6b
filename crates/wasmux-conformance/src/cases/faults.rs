//! Faults from outside the guest: a stdout reader that goes away, a mount source that
//! vanishes between mapping and running, and modules at the edge of what is sane.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::Duration;

use wasmux::{Error, ExitStatus, RunControl, StdioStream};

use super::probe;
use crate::BundleBuilder;
use crate::suite::{Check, Ctx};

/// The guest's stdout is a pipe whose reader reads 128 KiB and closes: the guest's
/// next write fails with EPIPE (which it reports), and the host neither dies of
/// SIGPIPE nor hangs (a 60 s deadline would say so).
pub fn stdout_reader_goes_away(ctx: &Ctx) -> Check {
    let bundle = ctx.write("epipe", &probe(&["write-until-error"]));
    let mut spec = ctx.prepare(&bundle).map_err(|e| e.to_string())?;
    let (mut reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let stderr = bundle.with_extension("stderr");
    spec.stdio.stdout = StdioStream::from(OwnedFd::from(writer));
    spec.stdio.stderr =
        StdioStream::from(std::fs::File::create(&stderr).map_err(|e| e.to_string())?);
    spec.limits.timeout = Some(Duration::from_secs(60));
    let reading = std::thread::spawn(move || {
        let mut first = vec![0u8; 128 * 1024];
        reader.read_exact(&mut first).map(|()| first.len())
    });
    let status = wasmux::run_once(ctx.engine, spec, &RunControl::new());
    let read = reading.join().map_err(|_| "the reader panicked")?;
    if read.map_err(|e| e.to_string())? != 128 * 1024 {
        return Err("the reader did not get its 128 KiB".into());
    }
    match status {
        Ok(ExitStatus::Exited(0)) => {}
        other => {
            return Err(format!(
                "expected the guest to exit 0 after EPIPE, got {other:?}"
            ));
        }
    }
    let said = std::fs::read_to_string(&stderr).map_err(|e| e.to_string())?;
    if !said.contains("stdout error: BrokenPipe") {
        return Err(format!("the guest did not see EPIPE; its stderr: {said:?}"));
    }
    Ok(())
}

/// A bind mount's source is removed after the bundle was mapped: running is a clear
/// error naming it, not a panic and not a guest that silently lacks its files.
pub fn mount_source_vanishes(ctx: &Ctx) -> Check {
    let data = ctx.host_dir("vanish", "data");
    let bundle = ctx.write(
        "vanish",
        &probe(&["read", "/data/x"]).bind(&data, "/data", true),
    );
    let spec = ctx.prepare(&bundle).map_err(|e| e.to_string())?;
    std::fs::remove_dir(&data).map_err(|e| e.to_string())?;
    match wasmux::run_once(ctx.engine, spec, &RunControl::new()) {
        Err(e @ Error::Io { .. }) if e.to_string().contains("data") && e.exit_code() == 125 => {
            Ok(())
        }
        other => Err(format!(
            "expected an I/O error naming the mount, got {other:?}"
        )),
    }
}

/// 10,000 exported functions: loads and runs.
pub fn many_exports(ctx: &Ctx) -> Check {
    let mut wat = String::from("(module (func $f)\n");
    for i in 0..10_000 {
        wat.push_str(&format!("(export \"f{i}\" (func $f))\n"));
    }
    wat.push_str("(func (export \"_start\")))\n");
    run_edge_module(ctx, "many-exports", "exports.wat", wat.into_bytes())
}

/// One 64 MiB active data segment (filling a 64 MiB memory): loads and runs.
pub fn huge_data_segment(ctx: &Ctx) -> Check {
    run_edge_module(ctx, "huge-data", "data.wasm", module_with_data(64 << 20))
}

fn run_edge_module(ctx: &Ctx, name: &str, file: &str, bytes: Vec<u8>) -> Check {
    let guest = format!("/{file}");
    let bundle = BundleBuilder::default()
        .file(&guest, bytes)
        .args([guest.as_str()]);
    let ran = ctx.run(&ctx.write(name, &bundle));
    ran.expect_status(&ExitStatus::Exited(0))
}

/// A module with `_start` (empty), one memory of exactly `len` bytes (a multiple of
/// 64 KiB), and one active data segment filling it with a pattern.
fn module_with_data(len: usize) -> Vec<u8> {
    use crate::wasm_bytes::{leb, section};
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 0], &mut module); // type 0: [] -> []
    section(3, &[1, 0], &mut module); // func 0: type 0
    let mut memory = vec![1, 0]; // one memory, min only
    leb(len >> 16, &mut memory);
    section(5, &memory, &mut module);
    let mut export = vec![1, 6];
    export.extend_from_slice(b"_start");
    export.extend_from_slice(&[0, 0]); // func 0
    section(7, &export, &mut module);
    section(10, &[1, 2, 0, 0x0b], &mut module); // body: no locals, end
    let mut data = vec![1, 0, 0x41, 0, 0x0b]; // active, memory 0, i32.const 0
    leb(len, &mut data);
    data.extend((0..len).map(|i| (i % 251) as u8));
    section(11, &data, &mut module);
    module
}

/// The guest spins writing to a stdout pipe nobody reads: once the pipe is full it is
/// blocked in the host's write, and the deadline must still end it.
pub fn deadline_with_stdout_full(ctx: &Ctx) -> Check {
    let bundle = ctx.write("spew", &probe(&["spew", "1000000000", "0"]));
    let (reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let mut spec = ctx.prepare(&bundle).map_err(|e| e.to_string())?;
    spec.stdio.stdout = StdioStream::from(OwnedFd::from(writer));
    expect_deadline_kill(ctx, spec)?;
    drop(reader);
    Ok(())
}

/// The guest waits on a stdin pipe that stays open and silent: the deadline must still
/// end it.
pub fn deadline_with_stdin_silent(ctx: &Ctx) -> Check {
    let bundle = ctx.write("hold", &probe(&["hold"]));
    let (reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let mut spec = ctx.prepare(&bundle).map_err(|e| e.to_string())?;
    spec.stdio.stdin = StdioStream::from(OwnedFd::from(reader));
    spec.stdio.stdout = StdioStream::Null;
    expect_deadline_kill(ctx, spec)?;
    drop(writer);
    Ok(())
}

fn expect_deadline_kill(ctx: &Ctx, mut spec: wasmux::RunSpec) -> Check {
    spec.stdio.stderr = StdioStream::Null;
    spec.limits.timeout = Some(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let status = wasmux::run_once(ctx.engine, spec, &RunControl::new());
    // Liveness only: a generous bound on how long the deadline takes to end the run.
    if started.elapsed() > Duration::from_secs(30) {
        return Err(format!(
            "the deadline took {:?} to end the run",
            started.elapsed()
        ));
    }
    match status {
        Ok(ExitStatus::Killed(wasmux::SIGKILL)) => Ok(()),
        other => Err(format!(
            "expected Killed(SIGKILL) by the deadline, got {other:?}"
        )),
    }
}
