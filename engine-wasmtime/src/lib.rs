//! The wasmtime backend of wasmux: core modules through WASI preview1, components through
//! `wasi:cli/run` (preview2). It only translates a [`RunSpec`] into wasmtime calls; every
//! policy (mapping, limits, exit statuses) comes from `wasmux-engine-api`.
//!
//! - read-only preopens: enforced by wasmtime-wasi's `FsPerms::ReadOnly`, not host modes;
//! - memory limit: the store's `ResourceLimiter`, accounting through `MemoryBudget`;
//! - kill and deadline: epoch interruption; the epoch only advances when some run is
//!   killed, and each store then checks its own `RunControl`, so other runs go on.

mod outcome;
mod run;
mod wasi;

use wasmtime::component::{Component, Linker as ComponentLinker};
use wasmtime::{Config, Linker, Module as CoreModule};
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmux_engine_api::{
    Capabilities, Descriptor, Engine, EngineInfo, Error, Result, Support, WasmBinary, WasmKind,
};

use crate::run::{ComponentState, CoreState};

/// The engine's name, as used by `--engine` and `run.oci.handler`.
pub const NAME: &str = DESCRIPTOR.name;

/// Name, wasmtime release built against, and capabilities.
pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "wasmtime",
    version: "48.0.8",
    capabilities: Capabilities {
        components: Support::Supported,
        memory_limit: Support::Supported,
        interrupt: Support::Supported,
    },
};

/// A wasmtime engine with WASI linked once, shared by every module it loads.
#[derive(Clone)]
pub struct WasmtimeEngine {
    engine: wasmtime::Engine,
    core_linker: Linker<CoreState>,
    component_linker: ComponentLinker<ComponentState>,
}

impl WasmtimeEngine {
    /// Builds the engine: Cranelift, components and epoch interruption on.
    pub fn new() -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = wasmtime::Engine::new(&config).map_err(engine_error)?;
        let core_linker = run::core_linker(&engine).map_err(engine_error)?;
        let component_linker = run::component_linker(&engine).map_err(engine_error)?;
        Ok(WasmtimeEngine {
            engine,
            core_linker,
            component_linker,
        })
    }
}

impl EngineInfo for WasmtimeEngine {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }
}

/// A compiled and pre-linked module or component, ready to instantiate many times.
pub struct WasmtimeModule {
    engine: wasmtime::Engine,
    linked: Linked,
}

enum Linked {
    Core(wasmtime::InstancePre<CoreState>),
    Component(CommandPre<ComponentState>),
}

impl Engine for WasmtimeEngine {
    type Module = WasmtimeModule;

    fn load(&self, wasm: &WasmBinary) -> Result<WasmtimeModule> {
        let invalid = |e: wasmtime::Error| Error::InvalidModule {
            path: wasm.origin.clone(),
            message: format!("{e:#}"),
        };
        let link = |e: wasmtime::Error| Error::Link {
            path: wasm.origin.clone(),
            message: format!("{e:#}"),
        };
        let linked = match wasm.kind {
            WasmKind::CoreModule => {
                let module = CoreModule::new(&self.engine, &wasm.bytes).map_err(invalid)?;
                Linked::Core(self.core_linker.instantiate_pre(&module).map_err(link)?)
            }
            WasmKind::Component => {
                let component = Component::new(&self.engine, &wasm.bytes).map_err(invalid)?;
                let pre = self
                    .component_linker
                    .instantiate_pre(&component)
                    .map_err(link)?;
                Linked::Component(CommandPre::new(pre).map_err(link)?)
            }
        };
        Ok(WasmtimeModule {
            engine: self.engine.clone(),
            linked,
        })
    }
}

fn engine_error(e: wasmtime::Error) -> Error {
    Error::Engine {
        engine: NAME,
        message: format!("{e:#}"),
    }
}
