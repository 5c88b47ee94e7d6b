//! Loading through an artifact store (the precompile cache): a verified hit skips the
//! compiler; a miss compiles once and stores the result; any store fault falls back to
//! compiling, never to failing.

use std::fmt;

use tracing::{debug, warn};

use crate::artifact::{ArtifactKey, ArtifactLookup, ArtifactOrigin, ArtifactStore};
use crate::engine::{Engine, Precompile, Precompiler};
use crate::error::Result;
use crate::wasm::WasmBinary;

/// What the cache did for one load, so embedders and tests can see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEvent {
    /// No cache was given.
    Off,
    /// The engine has nothing to precompile (an interpreter); loaded directly.
    Uncacheable(&'static str),
    /// Loaded from a verified entry: no compile.
    Hit,
    /// Compiled and stored for next time.
    Stored,
    /// An existing entry was refused (damaged, foreign, or refused by the engine),
    /// never loaded, and replaced by a fresh compile.
    Replaced(String),
    /// Compiled, but the entry could not be written (read-only or full disk): this run
    /// is unaffected.
    NotStored(String),
    /// Missing (or refused), and the engine is tiered: loaded as baseline code; the
    /// optimized entry is the caller's to make, now or in the background, with
    /// [`DynEngine::fill_cache`](crate::DynEngine::fill_cache).
    Deferred,
}

impl fmt::Display for CacheEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheEvent::Off => f.write_str("cache off"),
            CacheEvent::Uncacheable(reason) => write!(f, "not cached: {reason}"),
            CacheEvent::Hit => f.write_str("cache hit"),
            CacheEvent::Stored => f.write_str("compiled and cached"),
            CacheEvent::Replaced(reason) => write!(f, "replaced a refused cache entry: {reason}"),
            CacheEvent::NotStored(reason) => write!(f, "compiled, not cached: {reason}"),
            CacheEvent::Deferred => f.write_str("baseline code now, optimized code to cache"),
        }
    }
}

impl CacheEvent {
    /// The cache misbehaved in a way a user should hear about (the run is unaffected).
    pub fn is_warning(&self) -> bool {
        matches!(self, CacheEvent::Replaced(_) | CacheEvent::NotStored(_))
    }
}

/// Loads `wasm` on `engine`, through `cache` when there is one and the engine can
/// precompile. Only the engine's own load errors (an invalid module) fail the call.
/// The one place the binary's kind is checked against the engine.
pub(crate) fn load_cached<E: Engine + ?Sized>(
    engine: &E,
    wasm: &WasmBinary,
    cache: Option<&dyn ArtifactStore>,
) -> Result<(E::Module, CacheEvent)> {
    let descriptor = engine.descriptor();
    descriptor
        .capabilities
        .check_kind(descriptor.name, wasm.kind)?;
    let Some(cache) = cache else {
        return Ok((engine.load_module(wasm)?, CacheEvent::Off));
    };
    let precompiler = match engine.precompiler() {
        Precompiler::Available(precompiler) => precompiler,
        Precompiler::Unavailable(reason) => {
            return Ok((engine.load_module(wasm)?, CacheEvent::Uncacheable(reason)));
        }
    };
    let origin = ArtifactOrigin {
        engine: descriptor,
        fingerprint: &precompiler.fingerprint(),
        module: &wasm.bytes,
    };
    let key = cache.key(origin.engine, origin.fingerprint, origin.module);
    let refused = match cache.read(&key) {
        ArtifactLookup::Found(artifact) => match precompiler.load_precompiled(wasm, &artifact) {
            Ok(module) => {
                debug!(%key, "precompile cache hit");
                return Ok((module, CacheEvent::Hit));
            }
            Err(e) => Some(format!("the engine refused it: {e}")),
        },
        ArtifactLookup::Missing => None,
        ArtifactLookup::Rejected(reason) => Some(reason),
    };
    if let Some(baseline) = precompiler.load_baseline(wasm) {
        if let Some(reason) = &refused {
            warn!(%key, %reason, "precompile cache entry refused; baseline code until it is refilled");
        }
        debug!(%key, "precompile cache miss: baseline tier");
        return Ok((baseline?, CacheEvent::Deferred));
    }
    compile_and_store(precompiler, wasm, cache, &key, &origin, refused)
}

/// Compiles `wasm`'s optimized code into `cache` (after a [`CacheEvent::Deferred`]
/// load): `Stored`, or `NotStored` when the entry cannot be written.
pub(crate) fn fill_cache<E: Engine + ?Sized>(
    engine: &E,
    wasm: &WasmBinary,
    cache: &dyn ArtifactStore,
) -> Result<CacheEvent> {
    let descriptor = engine.descriptor();
    descriptor
        .capabilities
        .check_kind(descriptor.name, wasm.kind)?;
    let precompiler = match engine.precompiler() {
        Precompiler::Available(precompiler) => precompiler,
        Precompiler::Unavailable(reason) => return Ok(CacheEvent::Uncacheable(reason)),
    };
    let origin = ArtifactOrigin {
        engine: descriptor,
        fingerprint: &precompiler.fingerprint(),
        module: &wasm.bytes,
    };
    let key = cache.key(origin.engine, origin.fingerprint, origin.module);
    Ok(compile_and_store(precompiler, wasm, cache, &key, &origin, None)?.1)
}

/// The miss path: compile, then write the entry (a write failure costs the entry only).
fn compile_and_store<M>(
    precompiler: &dyn Precompile<M>,
    wasm: &WasmBinary,
    cache: &dyn ArtifactStore,
    key: &ArtifactKey,
    origin: &ArtifactOrigin<'_>,
    refused: Option<String>,
) -> Result<(M, CacheEvent)> {
    let (module, artifact) = precompiler.compile_for_cache(wasm)?;
    let event = match (cache.write(key, origin, &artifact), refused) {
        (Ok(()), None) => CacheEvent::Stored,
        (Ok(()), Some(reason)) => CacheEvent::Replaced(reason),
        (Err(e), refused) => CacheEvent::NotStored(match refused {
            None => format!("writing to {cache}: {e}"),
            Some(r) => format!("{r}; then writing to {cache}: {e}"),
        }),
    };
    if event.is_warning() {
        warn!(%key, %event, "precompile cache");
    }
    Ok((module, event))
}
