//! The optimized code a tiered load left for later ([`CacheEvent::Deferred`]), compiled
//! by a detached process so that the run's own process can report its exit status and
//! end as soon as the guest does.
//!
//! A process that ends cannot finish the work on a thread; one that waits for it
//! reports its status late (by the whole optimized compile, ten seconds for CPython).
//! So the binary starts itself again in a hidden mode, [`fill_from_stdin`], hands it the
//! module through a pipe, and goes on: the child lowers its priority, compiles, and
//! stores the entry atomically (an interrupted fill leaves no entry, and the next start
//! on baseline code simply starts another).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use wasmux_engine_api::{
    CacheEvent, EngineOptions, Error, PrecompileCache, Result, Sniffed, WasmBinary,
};

/// The hidden subcommand each binary dispatches to [`fill_from_stdin`].
pub const FILL_CACHE_COMMAND: &str = "__fill-cache";

/// Starts this binary again as `BINARY FILL_CACHE_COMMAND ENGINE CACHE_DIR [OPTION...]`
/// in a process group of its own, with `wasm` on its stdin and no other stdio, and
/// returns once the module is handed over (the child reads it first). An error (the
/// binary cannot start itself) leaves the fill to the caller ([`fill_now`]).
pub fn spawn_detached(
    engine: &str,
    options: &EngineOptions,
    cache: &PrecompileCache,
    wasm: &WasmBinary,
) -> std::io::Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg(FILL_CACHE_COMMAND)
        .arg(engine)
        .arg(cache.dir())
        .args(options.to_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&wasm.bytes));
    // Not waited for: it outlives this process, and init reaps it.
    drop(child);
    written.unwrap_or(Ok(()))
}

/// The child's side: reads the module from stdin, builds `engine` with `options` and
/// compiles its optimized code into the cache at `cache_dir`, at the lowest priority.
pub fn fill_from_stdin(engine: &str, cache_dir: &Path, options: &[String]) -> Result<CacheEvent> {
    let _ = rustix::process::nice(19);
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading the module to precompile", e))?;
    let mut engine_options = EngineOptions::new();
    for option in options {
        engine_options.set(option)?;
    }
    let wasm = match crate::sniff(bytes, "the module to precompile")? {
        Sniffed::Wasm(wasm) => wasm,
        Sniffed::NotWasm(reason) => {
            return Err(Error::invalid_module("the module to precompile", reason));
        }
    };
    let cache = PrecompileCache::open(cache_dir)
        .map_err(|e| Error::io(format!("opening the cache {}", cache_dir.display()), e))?;
    crate::engine_with_options(engine, &engine_options)?.fill_cache(&wasm, &cache)
}

/// Compiles the optimized code of a deferred load now, in this process: for a runner
/// whose process may end before a background fill would (a container's), or after a
/// [`spawn_detached`] that failed (a binary started through an explicit loader cannot
/// start itself again).
pub fn fill_now(
    engine: &dyn wasmux_engine_api::DynEngine,
    wasm: &WasmBinary,
    cache: &PrecompileCache,
) {
    match engine.fill_cache(wasm, cache) {
        Ok(event) if event.is_warning() => tracing::warn!(%event, "precompile cache"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "compiling optimized code for the cache failed"),
    }
}
