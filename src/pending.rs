//! [`PendingCompile`]: the optimized code a tiered start left for later
//! ([`CacheEvent::Deferred`]), as a value its caller decides about.
//!
//! A process that ends cannot finish the work on a thread; one that waits for it
//! reports its status late (by the whole optimized compile, ten seconds for CPython).
//! So a binary whose process should end with its guest hands the work to a helper
//! process it owns ([`PendingCompile::hand_to`]: the binary names the program, usually
//! itself in a hidden mode that calls [`compile_from_stdin`]); a long-lived embedder, or
//! one that cannot start a helper, compiles it itself ([`PendingCompile::compile_now`]).
//! The library never starts a process of its own accord.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::{
    CacheEvent, DynEngine, EngineOptions, Error, PrecompileCache, Result, Sniffed, WasmBinary,
};

/// The name both wasmux binaries give the hidden subcommand that runs
/// [`compile_from_stdin`].
pub const COMPILE_COMMAND: &str = "__fill-cache";

/// Optimized code still to be compiled into the cache; see the module docs.
pub struct PendingCompile {
    engine: Arc<dyn DynEngine>,
    options: EngineOptions,
    wasm: WasmBinary,
    cache: PrecompileCache,
}

impl std::fmt::Debug for PendingCompile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCompile")
            .field("engine", &self.engine.name())
            .field("module", &self.wasm.origin)
            .field("cache", &self.cache.dir())
            .finish()
    }
}

impl PendingCompile {
    pub(crate) fn new(
        engine: Arc<dyn DynEngine>,
        options: EngineOptions,
        wasm: WasmBinary,
        cache: PrecompileCache,
    ) -> Self {
        PendingCompile {
            engine,
            options,
            wasm,
            cache,
        }
    }

    /// Compiles the optimized code into the cache now, in this process. A failure
    /// costs the cache entry, never the caller: it is logged.
    pub fn compile_now(self) {
        match self.compile() {
            Ok(event) if event.is_warning() => tracing::warn!(%event, "precompile cache"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "compiling optimized code for the cache failed"),
        }
    }

    /// Compiles the optimized code into the cache now, in this process, and says what
    /// the cache did (for a caller that reports it: `wasmux cache precompile`).
    pub fn compile(self) -> crate::Result<crate::CacheEvent> {
        self.engine.fill_cache(&self.wasm, &self.cache)
    }

    /// Hands the work to the helper `helper` makes, a program of the caller's (usually
    /// itself with [`COMPILE_COMMAND`]), started with `ENGINE CACHE_DIR [OPTION...]` appended to its
    /// arguments, the module on its stdin and no other stdio, in a process group of its
    /// own so that the caller's signals do not reach it. Returns once the module is
    /// handed over; the helper is not waited for. On an error (the helper cannot
    /// start) the work comes back, for [`compile_now`](Self::compile_now).
    pub fn hand_to(
        self,
        helper: impl FnOnce() -> std::io::Result<Command>,
    ) -> std::result::Result<(), Box<NotHandedOver>> {
        let mut helper = match helper() {
            Ok(helper) => helper,
            Err(error) => return Err(self.not_handed_over(error)),
        };
        let spawned = helper
            .arg(self.engine.name())
            .arg(self.cache.dir())
            .args(self.options.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => return Err(self.not_handed_over(error)),
        };
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(&self.wasm.bytes));
        // Not waited for: it outlives this process, and init reaps it.
        drop(child);
        match written.unwrap_or(Ok(())) {
            Ok(()) => Ok(()),
            Err(error) => Err(self.not_handed_over(error)),
        }
    }

    fn not_handed_over(self, error: std::io::Error) -> Box<NotHandedOver> {
        Box::new(NotHandedOver {
            pending: self,
            error,
        })
    }
}

/// A [`PendingCompile`] no helper took, and why.
#[derive(Debug)]
pub struct NotHandedOver {
    /// The work, still to be done.
    pub pending: PendingCompile,
    /// Why the helper could not take it.
    pub error: std::io::Error,
}

/// The helper's side of [`PendingCompile::hand_to`]: reads the module from stdin,
/// builds `engine` with `options` and compiles its optimized code into the cache at
/// `cache_dir`, at the lowest priority.
pub fn compile_from_stdin(
    engine: &str,
    cache_dir: &Path,
    options: &[String],
) -> Result<CacheEvent> {
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
