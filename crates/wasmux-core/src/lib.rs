//! The core of wasmux: what every engine backend builds against, and nothing of OCI.
//!
//! - [`RunSpec`]: one workload, fully decided (argv, environment, mounts as preopens,
//!   stdio, limits), as plain data; [`hostfs`] opens its host paths by descriptor.
//! - the backend hooks ([`engine`]: [`Engine`], [`Module`], [`Precompile`]) and the
//!   sealed surface embedders call ([`embed`]: [`DynEngine`], [`LoadedModule`]), which
//!   applies the kind and capability checks, the artifact store, the deadline and the
//!   exit contract once for every backend;
//! - [`RunControl`], [`ExitStatus`] and [`Error`]: how a run is stopped, how it ended,
//!   and what went wrong, with one exit-code table;
//! - [`EngineOptions`] and [`OptionSupport`]: engine settings, refused centrally.
//!
//! The OCI mapping (bundles, annotations, WAT) is `wasmux-bundle`; the precompile cache
//! is `wasmux-cache`, an [`ArtifactStore`]. Data flow: a `RunSpec` →
//! `DynEngine::load_cached` → `LoadedModule::run` → `ExitStatus` → `ExitStatus::exit_code`.

pub mod artifact;
pub mod control;
pub mod embed;
pub mod engine;
pub mod error;
pub mod hostfs;
mod load;
pub mod memory;
pub mod options;
pub mod spec;
pub mod status;
pub mod stdio_wait;
pub mod wasm;

pub use artifact::{Artifact, ArtifactKey, ArtifactLookup, ArtifactOrigin, ArtifactStore};
pub use control::{Deadline, KillHook, RunControl};
pub use embed::{DynEngine, LoadedModule, run_once};
pub use engine::{
    Capabilities, Capability, Descriptor, Engine, EngineInfo, Module, Precompile, Precompiler,
    RawRun, Support,
};
pub use error::{Cause, EXIT_NOT_FOUND, EXIT_NOT_RUNNABLE, EXIT_RUNTIME_ERROR, Error, Result};
pub use hostfs::HostDir;
pub use load::CacheEvent;
pub use memory::MemoryBudget;
pub use options::{
    EngineOptions, ONLY_WASMTIME_POOLS, OptionSupport, Requested, Tier, WasmFeature,
};
pub use spec::{GuestDir, KeepAlive, Limits, Preopen, RunSpec, Stdio, StdioStream};
pub use status::{ExitStatus, RawOutcome, SIGKILL, SIGTERM, SIGXCPU, TrapKind};
pub use wasm::{WasmBinary, WasmKind};
