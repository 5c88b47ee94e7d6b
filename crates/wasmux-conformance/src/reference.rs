//! The differential suite's oracle: wasmtime-wasi's WASI preview1, the reference
//! implementation, driven directly as an embedder would. wasmux serves preview1 with its
//! own implementation on every engine (wasmtime included), so the oracle is kept here,
//! outside the product, as the independent answer every engine is compared with.

use std::fs::File;

use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::cli::{InputFile, OutputFile};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};
use wasmux::RunSpec;

/// How one reference run ended: `exit N`, or what went wrong, in the words the
/// differential suite compares.
pub fn run(spec: &RunSpec, stdout: File, stderr: File) -> Result<String, String> {
    let engine = Engine::new(&Config::new()).map_err(|e| format!("{e:#}"))?;
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).map_err(|e| format!("{e:#}"))?;
    // proc_exit with any status, as a container may exit (wasmtime-wasi refuses >= 126).
    linker.allow_shadowing(true);
    linker
        .func_wrap(
            "wasi_snapshot_preview1",
            "proc_exit",
            |status: i32| -> wasmtime::Result<()> { Err(I32Exit(status).into()) },
        )
        .map_err(|e| format!("{e:#}"))?;
    let mut wasi = WasiCtxBuilder::new();
    wasi.args(&spec.args)
        .envs(&spec.env)
        .allow_blocking_current_thread(true);
    for preopen in &spec.mounts {
        let perms = if preopen.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        wasi.preopened_dir(&preopen.host, &preopen.guest, perms)
            .map_err(|e| format!("preopening {}: {e:#}", preopen.host.display()))?;
    }
    let null = File::open("/dev/null").map_err(|e| e.to_string())?;
    wasi.stdin(InputFile::new(null))
        .stdout(OutputFile::new(stdout))
        .stderr(OutputFile::new(stderr));
    let module = Module::new(&engine, &spec.wasm.bytes).map_err(|e| format!("{e:#}"))?;
    let mut store = Store::new(&engine, wasi.build_p1());
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| format!("{e:#}"))?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|e| format!("{e:#}"))?;
    Ok(match start.call(&mut store, ()) {
        Ok(()) => "exit 0".to_owned(),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => format!("exit {}", exit.0 as u32),
            None => format!("trapped: {e:#}"),
        },
    })
}
