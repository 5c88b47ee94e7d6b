//! The engine-neutral core of wasmux.
//!
//! A container runtime hands wasmux an OCI bundle. This crate decides whether it is a
//! Wasm workload ([`detect`]), maps the OCI spec to WASI once for every engine
//! ([`Bundle::run_spec`] → [`RunSpec`]), defines the [`Engine`] trait backends implement,
//! and the exit-status contract ([`ExitStatus`]) every engine reports through.
//!
//! Data flow: `Bundle::load` → `Bundle::run_spec` → `Engine::load` → `Module::run` →
//! `ExitStatus` → `ExitStatus::exit_code`.

pub mod bundle;
pub mod cache;
pub mod control;
pub mod detect;
mod devices;
pub mod engine;
pub mod error;
pub mod memory;
pub mod rootpath;
pub mod spec;
pub mod status;
pub mod stdio_wait;

pub use bundle::{Bundle, parse_env};
pub use cache::{Artifact, CacheEvent, CacheSetting, PrecompileCache, load_cached};
pub use control::{Deadline, KillHook, RunControl};
pub use detect::{HandlerMode, HandlerRequest, Sniffed, WasmBinary, WasmKind, sniff};
pub use engine::{
    Capabilities, Descriptor, DynEngine, Engine, EngineInfo, Module, RawRun, Support, run_once,
};
pub use error::{EXIT_NOT_FOUND, EXIT_NOT_RUNNABLE, EXIT_RUNTIME_ERROR, Error, Result};
pub use memory::MemoryBudget;
pub use spec::{Limits, Preopen, RunSpec, Stdio, StdioStream};
pub use status::{ExitStatus, RawOutcome, SIGKILL, SIGTERM, TrapKind};
