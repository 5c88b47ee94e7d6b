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
//! use wasmux::{Bundle, EngineOptions, PrecompileCache, RunControl};
//!
//! # fn main() -> wasmux::Result<()> {
//! let bundle = Bundle::load("examples/hello")?;
//! let options = EngineOptions::new().with_pooling(64);
//! let engine = wasmux::engine_with_options("wasmtime", &options)?;
//! let cache = PrecompileCache::open("/var/cache/my-shim").ok();
//! let spec = bundle.run_spec()?;
//! let (module, _event) = engine.load_cached(&spec.wasm, cache.as_ref())?;
//! for _ in 0..3 {
//!     let status = module.run(spec.clone(), &RunControl::new())?;
//!     println!("{status}");
//! }
//! # Ok(())
//! # }
//! ```

mod launcher;
pub mod pending;
pub mod signals;

pub use launcher::{ALLOWED_ENGINES_VAR, ENGINE_VAR, Launch, Launcher};
pub use pending::PendingCompile;
pub use wasmux_engine_api::{
    Bundle, CacheEvent, CacheSetting, Capabilities, Cause, Deadline, Descriptor, DynEngine,
    EXIT_NOT_FOUND, EXIT_NOT_RUNNABLE, EXIT_RUNTIME_ERROR, EngineInfo, EngineOptions, Error,
    ExitStatus, HandlerMode, HandlerRequest, Limits, LoadedModule, PrecompileCache, Preopen,
    Result, RunControl, RunSpec, SIGKILL, SIGTERM, Sniffed, Stdio, StdioStream, Support, Tier,
    TrapKind, WasmBinary, WasmKind, parse_env, run_once, sniff,
};

/// What a backend implements, and the shared pieces it builds on: for adding an engine
/// (docs/adding-an-engine.md), not for running workloads.
pub mod backend {
    pub use wasmux_engine_api::{
        Artifact, Engine, KillHook, MemoryBudget, Module, Precompile, Precompiler, RawOutcome,
        RawRun, stdio_wait,
    };
}

/// One compiled-in engine: its name, and how to build it when it is chosen.
#[derive(Clone, Copy)]
pub struct EngineEntry {
    /// The name used by `--engine` and `run.oci.handler`.
    pub name: &'static str,
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
        create: |o| Ok(Box::new(wasmux_wasmtime::WasmtimeEngine::with_options(o)?)),
    },
    #[cfg(feature = "wasmer")]
    EngineEntry {
        name: wasmux_wasmer::NAME,
        create: |o| Ok(Box::new(wasmux_wasmer::WasmerEngine::with_options(o)?)),
    },
    #[cfg(feature = "wasm3")]
    EngineEntry {
        name: wasmux_wasm3::NAME,
        create: |o| Ok(Box::new(wasmux_wasm3::Wasm3Engine::with_options(o)?)),
    },
    #[cfg(feature = "wamr")]
    EngineEntry {
        name: wasmux_wamr::NAME,
        create: |o| Ok(Box::new(wasmux_wamr::WamrEngine::with_options(o)?)),
    },
    #[cfg(feature = "wasmedge")]
    EngineEntry {
        name: wasmux_wasmedge::NAME,
        create: |o| Ok(Box::new(wasmux_wasmedge::WasmEdgeEngine::with_options(o)?)),
    },
    #[cfg(feature = "wasmedge")]
    EngineEntry {
        name: wasmux_wasmedge::AOT_NAME,
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

/// Builds the engine called `name` with `options`; an option the engine does not have
/// is [`Error::Unsupported`].
pub fn engine_with_options(name: &str, options: &EngineOptions) -> Result<Box<dyn DynEngine>> {
    let entry = ENGINES
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::UnknownEngine {
            name: name.to_owned(),
            available: available_engines(),
        })?;
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

    /// Every engine honours the options it has and refuses the others by name: none
    /// ignores one silently.
    #[test]
    fn engines_take_or_refuse_each_option() {
        let pooled = EngineOptions::new().with_pooling(4);
        let stacked = EngineOptions::new().with_stack_size(4 << 20);
        for entry in ENGINES {
            let has_pool = entry.name == "wasmtime";
            match ((entry.create)(&pooled), has_pool) {
                (Ok(_), true) => {}
                (Err(Error::Unsupported { engine, .. }), false) => assert_eq!(engine, entry.name),
                (other, _) => panic!("{}: pooling gave {:?}", entry.name, other.err()),
            }
            let has_stack = entry.name != "wasmer";
            match ((entry.create)(&stacked), has_stack) {
                (Ok(_), true) => {}
                (Err(Error::Unsupported { engine, .. }), false) => assert_eq!(engine, entry.name),
                (other, _) => panic!("{}: stack size gave {:?}", entry.name, other.err()),
            }
            for tier in [Tier::Baseline, Tier::Optimized, Tier::Auto] {
                let has_tier = match entry.name {
                    "wasmtime" => true,
                    "wasmer" => tier != Tier::Optimized,
                    _ => false,
                };
                let tiered = EngineOptions::new().with_tier(tier);
                match ((entry.create)(&tiered), has_tier) {
                    (Ok(_), true) => {}
                    (Err(Error::Unsupported { engine, .. }), false) => {
                        assert_eq!(engine, entry.name)
                    }
                    (other, _) => panic!("{}: {tier:?} gave {:?}", entry.name, other.err()),
                }
            }
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
