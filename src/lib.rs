//! wasmux runs WebAssembly workloads from OCI bundles on the engine of your choice.
//!
//! This facade re-exports the engine-neutral core ([`wasmux_engine_api`]) and registers
//! every engine compiled in through cargo features (`wasmtime` is on by default).
//!
//! ```no_run
//! use wasmux::{Bundle, RunControl};
//!
//! # fn main() -> wasmux::Result<()> {
//! let bundle = Bundle::load("examples/hello")?;
//! let engine = wasmux::select_engine(None, bundle.requested_engine())?;
//! let status = wasmux::run_once(engine.as_ref(), bundle.run_spec()?, &RunControl::new())?;
//! std::process::exit(status.exit_code().into());
//! # }
//! ```

pub use wasmux_engine_api::*;

/// One compiled-in engine: its name, and how to build it when it is chosen.
#[derive(Clone, Copy)]
pub struct EngineEntry {
    /// The name used by `--engine` and `run.oci.handler`.
    pub name: &'static str,
    /// Builds the engine. Only the chosen engine is built, since building one has a cost.
    pub create: fn() -> Result<Box<dyn DynEngine>>,
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
        create: || Ok(Box::new(wasmux_wasmtime::WasmtimeEngine::new()?)),
    },
    #[cfg(feature = "wasmer")]
    EngineEntry {
        name: wasmux_wasmer::NAME,
        create: || Ok(Box::new(wasmux_wasmer::WasmerEngine::new()?)),
    },
    #[cfg(feature = "wasm3")]
    EngineEntry {
        name: wasmux_wasm3::NAME,
        create: || Ok(Box::new(wasmux_wasm3::Wasm3Engine::new()?)),
    },
    #[cfg(feature = "wamr")]
    EngineEntry {
        name: wasmux_wamr::NAME,
        create: || Ok(Box::new(wasmux_wamr::WamrEngine::new()?)),
    },
    #[cfg(feature = "wasmedge")]
    EngineEntry {
        name: wasmux_wasmedge::NAME,
        create: || Ok(Box::new(wasmux_wasmedge::WasmEdgeEngine::new()?)),
    },
    #[cfg(feature = "wasmedge")]
    EngineEntry {
        name: wasmux_wasmedge::AOT_NAME,
        create: || Ok(Box::new(wasmux_wasmedge::WasmEdgeEngine::aot()?)),
    },
];

/// Builds the engine called `name`, or says which names would have worked.
pub fn engine_by_name(name: &str) -> Result<Box<dyn DynEngine>> {
    let entry = ENGINES
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::UnknownEngine {
            name: name.to_owned(),
            available: available_engines(),
        })?;
    (entry.create)()
}

/// Chooses an engine: an explicit choice first, then the one the bundle asks for
/// (`run.oci.handler=<name>`), then the default.
pub fn select_engine(
    explicit: Option<&str>,
    requested: Option<&str>,
) -> Result<Box<dyn DynEngine>> {
    match explicit.or(requested) {
        Some(name) => engine_by_name(name),
        None => {
            let entry = ENGINES.first().ok_or_else(|| Error::UnknownEngine {
                name: "(default)".into(),
                available: available_engines(),
            })?;
            (entry.create)()
        }
    }
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
                let engine = (entry.create)().unwrap();
                assert_eq!(locked(entry.name), [engine.version()], "{}", entry.name);
            }
        }
    }

    #[cfg(feature = "wasmtime")]
    #[test]
    fn explicit_choice_beats_the_bundle_request() {
        assert_eq!(select_engine(None, None).unwrap().name(), "wasmtime");
        assert!(select_engine(Some("nope"), Some("wasmtime")).is_err());
        assert_eq!(
            select_engine(Some("wasmtime"), Some("nope"))
                .unwrap()
                .name(),
            "wasmtime"
        );
    }
}

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
