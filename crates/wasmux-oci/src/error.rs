//! How a runtime command fails. The wording of the lifecycle errors follows runc's,
//! because podman and containerd's runc shim match on it (for example "container not
//! running" or "does not exist" after a race with the container's exit).

use std::path::PathBuf;

use oci_spec::runtime::ContainerState;

/// Why a `wasmux-oci` command failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The container ID could be used to escape the state root, or is unusable.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The ID as given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No container with this ID under the state root.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// `create` of an ID that is already taken.
    #[error("container with id exists: {0}")]
    Exists(String),
    /// `kill` of a container whose process has exited.
    #[error("container {0} not running")]
    NotRunning(String),
    /// `start` in a state other than created.
    #[error("cannot start container {id}: it is {status}, not created")]
    NotCreated {
        /// The container.
        id: String,
        /// Its current status.
        status: ContainerState,
    },
    /// `delete` of a live container without `--force`.
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped {
        /// The container.
        id: String,
        /// Its current status.
        status: ContainerState,
    },
    /// The container process ended before it reported ready or before `start` reached it.
    #[error("container {id}: the container process exited {when}")]
    ProcessGone {
        /// The container.
        id: String,
        /// At which step.
        when: &'static str,
    },
    /// A runc command with no meaning for a Wasm guest.
    #[error("{command} is not supported for Wasm containers: {reason}")]
    Unsupported {
        /// The subcommand.
        command: &'static str,
        /// Why not.
        reason: &'static str,
    },
    /// Not a command of runc's command line.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// A signal name or number that is not a Linux signal.
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),
    /// The bundle is not a Wasm workload and no delegate runtime can run it.
    #[error("{reason}; no delegate runtime for Linux containers: {detail}")]
    NoDelegate {
        /// Why the bundle is not wasmux's.
        reason: String,
        /// Why the delegate could not be run.
        detail: String,
    },
    /// A state file that wasmux-oci did not write, or that was cut short.
    #[error("corrupt state file {path}: {message}")]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The container process could not prepare the run; its message, verbatim.
    #[error("{message}")]
    Container {
        /// wasmux's one-line error.
        message: String,
        /// The exit code that goes with it.
        exit_code: u8,
    },
    /// A bad bundle, module or engine failure, as wasmux reports it.
    #[error(transparent)]
    Wasmux(#[from] wasmux::Error),
    /// A host operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What wasmux-oci was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl OciError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        OciError::Io {
            context: context.into(),
            source: source.into(),
        }
    }

    /// The command's exit code: the wasmux contract's 125/126/127 for a bundle that
    /// cannot run, 1 (runc's) for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            OciError::Wasmux(e) => e.exit_code(),
            OciError::Container { exit_code, .. } => *exit_code,
            _ => 1,
        }
    }
}

/// Result of a runtime command step.
pub type Result<T, E = OciError> = std::result::Result<T, E>;
