//! The OCI mapping of wasmux: from what a container manager hands a runtime to a
//! [`RunSpec`](wasmux_core::RunSpec), decided once for every engine
//! (docs/oci-to-wasi.md).
//!
//! - [`Bundle`]: an OCI bundle on disk (`config.json` and its rootfs) and its mapping:
//!   argv verbatim, the environment exactly, the working directory, mounts as preopens
//!   with `ro` kept, tmpfs mounts and `/dev` as scratch directories, the memory limit;
//! - [`detect`]: whether it is a Wasm workload (annotations, then content: a Wasm
//!   header or WAT text, never a suffix);
//! - [`container_process_spec`]: a process already inside its container (a shim's
//!   init), mapped from the mount table it sees ([`parse_mountinfo`]).

pub mod annotations;
pub mod bundle;
pub mod container;
pub mod detect;
mod devices;
mod entrypoint;
mod scratch;

pub use annotations::{
    CPU_TIME_ANNOTATION, ENGINE_OPTIONS_ANNOTATION, TIMEOUT_ANNOTATION, requested_by,
};
pub use bundle::{Bundle, parse_env};
pub use container::{MountPoint, container_process_spec, parse_mountinfo};
pub use detect::{HandlerMode, HandlerRequest, Sniffed, sniff};
