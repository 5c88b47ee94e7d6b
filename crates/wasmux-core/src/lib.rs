//! The engine-neutral core of wasmux.
//!
//! A container runtime hands wasmux an OCI bundle. This crate decides whether it is a
//! Wasm workload ([`detect`]), maps the OCI spec to WASI once for every engine
//! ([`Bundle::run_spec`] → [`RunSpec`]), defines the hooks backends implement
//! ([`engine`]: [`Engine`], [`Module`], [`Precompile`]), the surface embedders call
//! ([`embed`]: [`DynEngine`], [`LoadedModule`]), and the exit-status contract
//! ([`ExitStatus`]) every engine reports through.
//!
//! Data flow: `Bundle::load` → `Bundle::run_spec` → `DynEngine::load_cached` →
//! `LoadedModule::run` → `ExitStatus` → `ExitStatus::exit_code`.

pub mod bundle;
pub mod cache;
pub mod container;
pub mod control;
pub mod detect;
mod devices;
pub mod embed;
pub mod engine;
mod entrypoint;
pub mod error;
pub mod hostfs;
pub mod memory;
pub mod options;
pub mod spec;
pub mod status;
pub mod stdio_wait;

pub use bundle::{Bundle, parse_env};
pub use cache::{Artifact, CacheEvent, CacheSetting, PrecompileCache};
pub use container::{MountPoint, parse_mountinfo};
pub use control::{Deadline, KillHook, RunControl};
pub use detect::{HandlerMode, HandlerRequest, Sniffed, WasmBinary, WasmKind, sniff};
pub use embed::{DynEngine, LoadedModule, run_once};
pub use engine::{
    Capabilities, Capability, Descriptor, Engine, EngineInfo, Module, Precompile, Precompiler,
    RawRun, Support,
};
pub use error::{Cause, EXIT_NOT_FOUND, EXIT_NOT_RUNNABLE, EXIT_RUNTIME_ERROR, Error, Result};
pub use hostfs::HostDir;
pub use memory::MemoryBudget;
pub use options::{EngineOptions, ONLY_WASMTIME_POOLS, OptionSupport, Tier};
pub use spec::{GuestDir, Limits, Preopen, RunSpec, Stdio, StdioStream};
pub use status::{ExitStatus, RawOutcome, SIGKILL, SIGTERM, TrapKind};
