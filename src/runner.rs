//! [`Runner`]: the whole path (bundle, engine choice, precompile cache, run, exit
//! status) in one call, for embedders that do not need the steps.

use std::path::{Path, PathBuf};

use tracing::warn;

use crate::{
    Bundle, CacheEvent, CacheSetting, EngineOptions, ExitStatus, PrecompileCache, Result,
    RunControl, RunSpec,
};

/// Runs bundles and specs with one engine configuration and one cache.
///
/// Each call builds the chosen engine (cheap next to a compile, and only the chosen
/// one); a process running many workloads on one engine keeps a [`DynEngine`](crate::DynEngine)
/// and its [`LoadedModule`](crate::LoadedModule)s instead.
#[derive(Debug, Clone)]
pub struct Runner {
    engine: Option<String>,
    options: EngineOptions,
    cache: CacheChoice,
}

#[derive(Debug, Clone)]
enum CacheChoice {
    /// Whatever `WASMUX_CACHE`/`WASMUX_CACHE_DIR` (or the user's cache directory) say.
    FromEnv,
    Dir(PathBuf),
    Off,
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// The bundle's engine (`run.oci.handler`) or the default, with its default options
    /// and the precompile cache the environment names.
    pub fn new() -> Self {
        Runner {
            engine: None,
            options: EngineOptions::default(),
            cache: CacheChoice::FromEnv,
        }
    }

    /// Always this engine, whatever the bundle asks for.
    pub fn engine(mut self, name: impl Into<String>) -> Self {
        self.engine = Some(name.into());
        self
    }

    /// Builds the engine with `options`.
    pub fn options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    /// Keeps precompiled modules in `dir` (made private to this user if new).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache = CacheChoice::Dir(dir.into());
        self
    }

    /// Compiles every time.
    pub fn no_cache(mut self) -> Self {
        self.cache = CacheChoice::Off;
        self
    }

    /// Loads the OCI bundle at `dir` and runs it to its exit status.
    pub fn run_bundle(&self, dir: impl AsRef<Path>, control: &RunControl) -> Result<ExitStatus> {
        let bundle = Bundle::load(dir)?;
        let spec = bundle.run_spec()?;
        self.run(spec, bundle.requested_engine(), control)
    }

    /// Runs `spec` on this runner's engine, else `requested` (a bundle's
    /// `run.oci.handler`), else the default.
    pub fn run(
        &self,
        spec: RunSpec,
        requested: Option<&str>,
        control: &RunControl,
    ) -> Result<ExitStatus> {
        let engine =
            crate::select_engine_with_options(self.engine.as_deref(), requested, &self.options)?;
        let cache = self.open_cache();
        let (module, event) = engine.load_cached(&spec.wasm, cache.as_ref())?;
        if event.is_warning() {
            warn!(%event, "precompile cache");
        }
        let wasm = spec.wasm.clone();
        let status = module.run(spec, control);
        // A tiered load ran baseline code: the optimized code goes into the cache once
        // the guest is done, before the status is returned (a container's process ends
        // with it, taking any background work along).
        if let (CacheEvent::Deferred, Some(cache)) = (event, &cache) {
            crate::deferred_fill::fill_now(engine.as_ref(), &wasm, cache);
        }
        status
    }

    /// The cache, or none when it is off or cannot be used (a cache fault costs the
    /// cache, never the run).
    fn open_cache(&self) -> Option<PrecompileCache> {
        let dir = match &self.cache {
            CacheChoice::Off => return None,
            CacheChoice::Dir(dir) => dir.clone(),
            CacheChoice::FromEnv => match CacheSetting::from_env() {
                CacheSetting::Off => return None,
                CacheSetting::Dir(dir) => dir,
            },
        };
        PrecompileCache::open(&dir)
            .inspect_err(|e| warn!(dir = %dir.display(), error = %e, "precompile cache unusable; running uncached"))
            .ok()
    }
}

#[cfg(all(test, feature = "wasmtime"))]
mod tests {
    use super::*;

    /// One call: the bundle's module is compiled into the given cache on the first
    /// run, and the second run of the same bundle finds it there.
    #[test]
    fn run_bundle_fills_the_cache_once_and_runs_to_the_exit_status() {
        let bundle = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello");
        let cache = tempfile::tempdir().unwrap();
        let runner = Runner::new().engine("wasmtime").cache_dir(cache.path());
        // Entries are replaced by rename, so a recompile would change the inode.
        let entries = || -> Vec<u64> {
            use std::os::unix::fs::MetadataExt;
            std::fs::read_dir(cache.path())
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().ino())
                .collect()
        };
        let status = runner.run_bundle(bundle, &RunControl::new()).unwrap();
        assert_eq!(status, ExitStatus::Exited(0));
        let stored = entries();
        assert_eq!(stored.len(), 1);
        let again = runner.run_bundle(bundle, &RunControl::new()).unwrap();
        assert_eq!(again, ExitStatus::Exited(0));
        assert_eq!(entries(), stored);
        let err = Runner::new()
            .engine("nope")
            .no_cache()
            .run_bundle(bundle, &RunControl::new())
            .unwrap_err();
        assert!(matches!(err, crate::Error::UnknownEngine { .. }), "{err}");
    }
}
