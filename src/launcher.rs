//! [`Launcher`]: how every front door (the `wasmux` CLI, `wasmux-oci`, the containerd
//! shim, an embedder) turns a workload into a loaded module: which engine, with which
//! options, through which precompile cache, and what to do with optimized code a tiered
//! start left for later. Each decision is made here once, so the doors differ only in
//! where their inputs come from.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::pending::PendingCompile;
use crate::{
    Bundle, CacheEvent, CacheSetting, DynEngine, EngineOptions, Error, ExitStatus, LoadedModule,
    PrecompileCache, Requested, Result, RunControl, RunSpec, WasmBinary,
};

/// The node's default engine, for workloads that do not name one.
pub const ENGINE_VAR: &str = "WASMUX_ENGINE";
/// A comma-separated list of the engines this node allows; every other engine is
/// refused, whoever chose it (an image's `run.oci.handler` included).
pub const ALLOWED_ENGINES_VAR: &str = "WASMUX_ALLOWED_ENGINES";

/// Where precompiled modules are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CachePolicy {
    /// Compile every time.
    Off,
    /// Always this directory (a command-line flag, a shim's node cache).
    Dir(PathBuf),
    /// What `WASMUX_CACHE`/`WASMUX_CACHE_DIR` say, else this default (the user's cache
    /// directory, or the caller's), else none.
    Environment {
        said: Option<CacheSetting>,
        default: Option<PathBuf>,
    },
}

/// The choices of one front door; see the module docs. Built from the environment
/// ([`Launcher::new`]) and then told what its caller knows better.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The caller's own choice (a `--engine` flag, a shim's runtime name).
    engine: Option<String>,
    /// `WASMUX_ENGINE`.
    node_default: Option<String>,
    /// `WASMUX_ALLOWED_ENGINES`.
    allowed: Option<Vec<String>>,
    options: EngineOptions,
    cache: CachePolicy,
}

/// A module loaded for a run, and what its load left to do.
pub struct Launch {
    /// The engine it was loaded on.
    pub engine: Arc<dyn DynEngine>,
    /// Ready to run, as many times as wanted.
    pub module: LoadedModule,
    /// What the precompile cache did.
    pub cache_event: CacheEvent,
    /// Optimized code still to be compiled for the cache ([`CacheEvent::Deferred`]):
    /// the caller compiles it now, after the run, or hands it to a helper process.
    pub pending: Option<PendingCompile>,
}

impl Default for Launcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Launcher {
    /// This process's environment: `WASMUX_ENGINE`, `WASMUX_ALLOWED_ENGINES`, and the
    /// cache variables.
    pub fn new() -> Self {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// [`new`](Self::new) over any source of variables (tests, embedders).
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Self {
        let set = |name: &str| {
            var(name)
                .and_then(|v| v.into_string().ok())
                .filter(|v| !v.trim().is_empty())
        };
        let allowed = set(ALLOWED_ENGINES_VAR).map(|list| {
            list.split(',')
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
                .collect()
        });
        Launcher {
            engine: None,
            node_default: set(ENGINE_VAR),
            allowed,
            options: EngineOptions::default(),
            cache: CachePolicy::Environment {
                said: CacheSetting::from_wasmux_vars(&var),
                default: CacheSetting::user_dir(&var),
            },
        }
    }

    /// Always this engine, whatever the workload asks for (still subject to the
    /// node's allow-list).
    pub fn engine(mut self, name: impl Into<String>) -> Self {
        self.engine = Some(name.into());
        self
    }

    /// Builds the engine with `options`.
    pub fn options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    /// Keeps precompiled modules in `dir` (made private to this user if new), whatever
    /// the environment says.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache = CachePolicy::Dir(dir.into());
        self
    }

    /// Compiles every time.
    pub fn no_cache(mut self) -> Self {
        self.cache = CachePolicy::Off;
        self
    }

    /// Where the cache goes when `WASMUX_CACHE_DIR` names none, instead of the user's
    /// cache directory (a shim's node-wide directory). No effect after
    /// [`cache_dir`](Self::cache_dir) or [`no_cache`](Self::no_cache).
    pub fn cache_default(mut self, dir: impl Into<PathBuf>) -> Self {
        if let CachePolicy::Environment { default, .. } = &mut self.cache {
            *default = Some(dir.into());
        }
        self
    }

    /// [`cache_default`](Self::cache_default) only where there is no user's cache
    /// directory (no `XDG_CACHE_HOME`, no `HOME`: a service, as runtimes often run).
    pub fn cache_default_when_homeless(mut self, dir: impl Into<PathBuf>) -> Self {
        if let CachePolicy::Environment { default, .. } = &mut self.cache {
            default.get_or_insert_with(|| dir.into());
        }
        self
    }

    /// The cache directory this launcher would use, without opening it.
    pub fn cache_location(&self) -> Option<PathBuf> {
        match &self.cache {
            CachePolicy::Off => None,
            CachePolicy::Dir(dir) => Some(dir.clone()),
            CachePolicy::Environment {
                said: Some(CacheSetting::Off),
                ..
            } => None,
            CachePolicy::Environment {
                said: Some(CacheSetting::Dir(dir)),
                ..
            } => Some(dir.clone()),
            CachePolicy::Environment {
                said: None,
                default,
            } => default.clone(),
        }
    }

    /// The engine options a workload that asks for `requested` runs with: this
    /// launcher's (the caller's) over the workload's.
    pub fn options_for(&self, requested: &Requested) -> EngineOptions {
        self.options.over(&requested.options)
    }

    /// The engine for a workload that asks for `requested` (a bundle's
    /// `run.oci.handler` and `wasmux.io/engine-options`): the caller's choice, else the
    /// workload's, else `WASMUX_ENGINE`, else wasmux's default; refused if the node
    /// does not allow it. Built with [`options_for`](Self::options_for).
    pub fn choose_engine(&self, requested: &Requested) -> Result<Arc<dyn DynEngine>> {
        let name = match (
            &self.engine,
            requested.engine.as_deref(),
            &self.node_default,
        ) {
            (Some(name), _, _) => name.as_str(),
            (None, Some(name), _) => name,
            (None, None, Some(name)) => name.as_str(),
            (None, None, None) => crate::default_engine()?,
        };
        if let Some(allowed) = &self.allowed
            && !allowed.iter().any(|a| a == name)
        {
            return Err(Error::EngineNotAllowed {
                name: name.to_owned(),
                allowed: allowed.join(", "),
            });
        }
        Ok(Arc::from(crate::engine_with_options(
            name,
            &self.options_for(requested),
        )?))
    }

    /// The precompile cache this launcher uses (`None` when it is off), or why it
    /// cannot be used, for a caller that reports that itself.
    pub fn open_cache(&self) -> std::io::Result<Option<PrecompileCache>> {
        let Some(dir) = self.cache_location() else {
            return Ok(None);
        };
        PrecompileCache::open(&dir)
            .map(Some)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
    }

    /// [`open_cache`](Self::open_cache), with an unusable cache logged and the run going
    /// on uncached: a cache fault costs the cache, never the run.
    pub fn cache(&self) -> Option<PrecompileCache> {
        self.open_cache()
            .inspect_err(|e| warn!(error = %e, "precompile cache unusable; running uncached"))
            .ok()
            .flatten()
    }

    /// Chooses the engine and loads `wasm` through `cache` (usually
    /// [`cache`](Self::cache)).
    pub fn load(
        &self,
        wasm: &WasmBinary,
        requested: &Requested,
        cache: Option<PrecompileCache>,
    ) -> Result<Launch> {
        let engine = self.choose_engine(requested)?;
        let (module, cache_event) = engine.load_cached(wasm, cache.as_ref().map(|c| c as _))?;
        let pending = match (&cache_event, cache) {
            (CacheEvent::Deferred, Some(cache)) => Some(PendingCompile::new(
                engine.clone(),
                self.options_for(requested),
                wasm.clone(),
                cache,
            )),
            _ => None,
        };
        Ok(Launch {
            engine,
            module,
            cache_event,
            pending,
        })
    }

    /// The whole path in one call: loads `spec`'s module ([`load`](Self::load)), runs it
    /// (or serves it, a `wasi:http` proxy, where [`http_listen`](crate::http_listen)
    /// says) to its exit status, and compiles any pending optimized code once the guest is
    /// done (before returning: a container's process ends with its status).
    pub fn run(
        &self,
        spec: RunSpec,
        requested: &Requested,
        control: &RunControl,
    ) -> Result<ExitStatus> {
        let launch = self.load(&spec.wasm, requested, self.cache())?;
        if launch.cache_event.is_warning() {
            warn!(event = %launch.cache_event, "precompile cache");
        }
        let listen = crate::http_listen(None, &spec.env);
        let status = crate::run_or_serve(&launch.module, spec, &listen, control);
        if let Some(pending) = launch.pending {
            pending.compile_now();
        }
        status
    }

    /// [`run`](Self::run) for the OCI bundle at `dir`, on the engine it asks for unless
    /// this launcher chose one.
    pub fn run_bundle(&self, dir: impl AsRef<Path>, control: &RunControl) -> Result<ExitStatus> {
        let bundle = Bundle::load(dir)?;
        let spec = bundle.run_spec()?;
        self.run(spec, &bundle.requested(), control)
    }
}

#[cfg(test)]
mod tests;
