//! wasmux runs WebAssembly workloads from OCI bundles on the engine of your choice.
//!
//! This facade is what embedders depend on: the engine-neutral API at the top level
//! (bundles, specs, [`DynEngine`] to load, [`LoadedModule`] to run, [`ExitStatus`]),
//! every engine compiled in through cargo features (`wasmtime` and `wasmer` are the
//! Rust-only ones; `wasmtime` is on by default), chosen by name, and the [`Launcher`]
//! every front door uses: one rule for the engine, one cache policy, and the whole path
//! in one call. What a backend implements lives under [`backend`].
//!
//! ```no_run
//! use wasmux::{Launcher, RunControl};
//!
//! # fn main() -> wasmux::Result<()> {
//! let status = Launcher::new().run_bundle("examples/hello", &RunControl::new())?;
//! std::process::exit(status.exit_code().into());
//! # }
//! ```
//!
//! Step by step, with an engine chosen and configured by name:
//!
//! ```no_run
//! use wasmux::{ArtifactStore, Bundle, EngineOptions, PrecompileCache, RunControl};
//!
//! # fn main() -> wasmux::Result<()> {
//! let bundle = Bundle::load("examples/hello")?;
//! let options = EngineOptions::new().with_pooling(64);
//! let engine = wasmux::engine_with_options("wasmtime", &options)?;
//! let cache = PrecompileCache::open("/var/cache/my-shim").ok();
//! let spec = bundle.run_spec()?;
//! let store = cache.as_ref().map(|c| c as &dyn ArtifactStore);
//! let (module, _event) = engine.load_cached(&spec.wasm, store)?;
//! for _ in 0..3 {
//!     let status = module.run(spec.clone(), &RunControl::new())?;
//!     println!("{status}");
//! }
//! # Ok(())
//! # }
//! ```

mod launcher;
pub mod pending;
pub mod service;
pub mod signals;

pub use launcher::{ALLOWED_ENGINES_VAR, ENGINE_VAR, Launch, Launcher};
pub use pending::PendingCompile;
pub use service::{DEFAULT_HTTP_LISTEN, HTTP_LISTEN_ANNOTATION, http_listen, run_or_serve};
pub use wasmux_bundle::annotations;
pub use wasmux_bundle::{
    Bundle, ENGINE_OPTIONS_ANNOTATION, HandlerMode, HandlerRequest, MountPoint, Sniffed,
    TIMEOUT_ANNOTATION, container_process_spec, parse_env, parse_mountinfo, requested_by, sniff,
};
pub use wasmux_cache::{CacheSetting, PrecompileCache, SealedEntry, inventory};
pub use wasmux_core::options::parse_size;
pub use wasmux_core::{
    ArtifactStore, CacheEvent, Capabilities, Capability, Cause, Deadline, Descriptor, DynEngine,
    EXIT_NOT_FOUND, EXIT_NOT_RUNNABLE, EXIT_RUNTIME_ERROR, EngineInfo, EngineOptions, Error,
    ExitStatus, Limits, LoadedModule, Preopen, Requested, Result, RunControl, RunSpec, SIGKILL,
    SIGTERM, Stdio, StdioStream, Support, Tier, TrapKind, WasmBinary, WasmFeature, WasmKind,
    run_once,
};

/// What a backend implements, and the shared pieces it builds on: for adding an engine
/// (docs/adding-an-engine.md), not for running workloads.
pub mod backend {
    pub use wasmux_core::{
        Artifact, ArtifactKey, ArtifactLookup, ArtifactOrigin, Engine, KillHook, MemoryBudget,
        Module, Precompile, Precompiler, RawOutcome, RawRun, stdio_wait,
    };
}

/// One compiled-in engine: its name, and how to build it when it is chosen.
#[derive(Clone, Copy)]
pub struct EngineEntry {
    /// The name used by `--engine` and `run.oci.handler`.
    pub name: &'static str,
    /// What the engine declares: its capabilities and the options it takes.
    pub descriptor: &'static Descriptor,
    /// Builds the engine with the given options. Only the chosen engine is built,
    /// since building one has a cost.
    pub create: fn(&EngineOptions) -> Result<Box<dyn DynEngine>>,
}

impl std::fmt::Debug for EngineEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineEntry")
            .field("name", &self.name)
            .finish()
    }
}

/// Every engine this build of wasmux contains, the default first.
pub const ENGINES: &[EngineEntry] = &[
    #[cfg(feature = "wasmtime")]
    EngineEntry {
        name: wasmux_wasmtime::NAME,
        descriptor: &wasmux_wasmtime::DESCRIPTOR,
        create: |o| Ok(Box::new(wasmux_wasmtime::WasmtimeEngine::with_options(o)?)),
    },
    #[cfg(feature = "wasmer")]
    EngineEntry {
        name: wasmux_wasmer::NAME,
        descriptor: &wasmux_wasmer::DESCRIPTOR,
        create: |o| Ok(Box::new(wasmux_wasmer::WasmerEngine::with_options(o)?)),
    },
    #[cfg(feature = "wasm3")]
    EngineEntry {
        name: wasmux_wasm3::NAME,
        descriptor: &wasmux_wasm3::DESCRIPTOR,
        create: |o| Ok(Box::new(wasmux_wasm3::Wasm3Engine::with_options(o)?)),
    },
    #[cfg(feature = "wamr")]
    EngineEntry {
        name: wasmux_wamr::NAME,
        descriptor: &wasmux_wamr::DESCRIPTOR,
        create: |o| Ok(Box::new(wasmux_wamr::WamrEngine::with_options(o)?)),
    },
    #[cfg(feature = "wasmedge")]
    EngineEntry {
        name: wasmux_wasmedge::NAME,
        descriptor: &wasmux_wasmedge::INTERPRETER,
        create: |o| Ok(Box::new(wasmux_wasmedge::WasmEdgeEngine::with_options(o)?)),
    },
    #[cfg(feature = "wasmedge")]
    EngineEntry {
        name: wasmux_wasmedge::AOT_NAME,
        descriptor: &wasmux_wasmedge::AOT,
        create: |o| {
            Ok(Box::new(wasmux_wasmedge::WasmEdgeEngine::aot_with_options(
                o,
            )?))
        },
    },
];

/// Builds the engine called `name` with its defaults, or says which names would have
/// worked.
pub fn engine_by_name(name: &str) -> Result<Box<dyn DynEngine>> {
    engine_with_options(name, &EngineOptions::default())
}

/// Builds the engine called `name` with `options`; an option the engine does not
/// declare in its descriptor is [`Error::Unsupported`], refused here for every engine.
pub fn engine_with_options(name: &str, options: &EngineOptions) -> Result<Box<dyn DynEngine>> {
    let entry = ENGINES
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::UnknownEngine {
            name: name.to_owned(),
            available: available_engines(),
        })?;
    entry.descriptor.options.check(entry.name, options)?;
    (entry.create)(options)
}

/// The name of the engine used when nobody chooses one.
pub fn default_engine() -> Result<&'static str> {
    ENGINES
        .first()
        .map(|e| e.name)
        .ok_or_else(|| Error::UnknownEngine {
            name: "(default)".into(),
            available: available_engines(),
        })
}

fn available_engines() -> String {
    if ENGINES.is_empty() {
        return "none (build with an engine feature, e.g. --features wasmtime)".into();
    }
    ENGINES
        .iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every engine builds with each option its descriptor declares and is refused,
    /// by name, each one it does not: the declaration is the truth, for every engine.
    #[test]
    fn engines_take_exactly_the_options_they_declare() {
        let stack = EngineOptions::new().with_stack_size(4 << 20);
        let pooled = EngineOptions::new().with_pooling(4);
        for entry in ENGINES {
            let declared = entry.descriptor.options;
            let mut cases = vec![
                (pooled.clone(), declared.pooling.is_supported()),
                (stack.clone(), declared.stack_size.is_supported()),
            ];
            for tier in [Tier::Baseline, Tier::Optimized, Tier::Auto] {
                cases.push((
                    EngineOptions::new().with_tier(tier),
                    declared.tiers.contains(&tier),
                ));
            }
            for (options, takes) in cases {
                match (engine_with_options(entry.name, &options), takes) {
                    (Ok(_), true) => {}
                    (Err(Error::Unsupported { engine, .. }), false) => {
                        assert_eq!(engine, entry.name)
                    }
                    (other, _) => panic!("{}: {options:?} gave {:?}", entry.name, other.err()),
                }
            }
        }
        // wasmtime takes all three; the others refuse pooling.
        for entry in ENGINES {
            assert_eq!(
                entry.descriptor.options.pooling.is_supported(),
                entry.name == "wasmtime"
            );
        }
    }

    #[test]
    fn unknown_engine_names_the_available_ones() {
        let err = engine_by_name("nope").err().unwrap();
        assert!(matches!(err, Error::UnknownEngine { .. }));
        for entry in ENGINES {
            assert!(err.to_string().contains(entry.name), "{err}");
        }
    }

    /// The engines that are Rust crates name, in their descriptors (and so in the cache
    /// key and `wasmux engines`), the crate version this build links.
    #[test]
    fn rust_engines_name_the_crate_versions_they_link() {
        let lock = include_str!("../Cargo.lock");
        let locked = |krate: &str| -> Vec<&str> {
            lock.split("[[package]]")
                .filter(|p| p.lines().any(|l| l == format!("name = \"{krate}\"")))
                .filter_map(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
                .map(|v| v.trim_matches('"'))
                .collect()
        };
        for entry in ENGINES {
            if matches!(entry.name, "wasmtime" | "wasmer") {
                let engine = (entry.create)(&EngineOptions::default()).unwrap();
                assert_eq!(locked(entry.name), [engine.version()], "{}", entry.name);
            }
        }
    }
}

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
