//! Every way a run can fail to start, each a variant a caller may handle differently.

use std::path::PathBuf;

/// Why a workload could not be started. A started workload always ends in an
/// [`ExitStatus`](crate::ExitStatus) instead, even when it traps or is killed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `config.json` is missing, not JSON, or not a valid OCI runtime spec.
    #[error("invalid OCI bundle config {path}: {message}")]
    InvalidConfig {
        /// The config file that was read.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// The bundle is well-formed JSON but asks for something that cannot be honoured.
    #[error("invalid OCI bundle: {0}")]
    InvalidBundle(String),
    /// A `process.env` entry has no `=` (OCI requires `KEY=VALUE`) or holds a NUL byte.
    #[error("invalid environment entry {entry:?}: expected KEY=VALUE without NUL bytes")]
    InvalidEnv {
        /// The offending entry, verbatim.
        entry: String,
    },
    /// A bind mount's source does not exist on the host.
    #[error("mount source {source_path} for {destination} does not exist")]
    MountSourceMissing {
        /// Host path named by the mount.
        source_path: PathBuf,
        /// Guest path it was to appear at.
        destination: String,
    },
    /// The entrypoint named by `process.args[0]` is not in the rootfs.
    #[error("entrypoint {path} not found: {reason}")]
    EntrypointNotFound {
        /// The guest path that was looked up.
        path: String,
        /// Why it could not be found or read.
        reason: String,
    },
    /// The entrypoint exists but is not a Wasm module, component or WAT file
    /// (under `compat`, or when a module was given explicitly).
    #[error("{path} is not a WebAssembly module, component or WAT file: {reason}")]
    NotWasm {
        /// The entrypoint that was inspected.
        path: String,
        /// What it looks like instead.
        reason: String,
    },
    /// `compat-smart` detection decided this is an ordinary Linux container: the
    /// embedding runtime should run it itself.
    #[error("not a Wasm workload: {reason}")]
    NotAWasmWorkload {
        /// What the entrypoint looks like.
        reason: String,
    },
    /// The engine rejected the module while validating or compiling it.
    #[error("invalid module {path}: {}", chain(source))]
    InvalidModule {
        /// Where the module came from.
        path: String,
        /// The engine's error.
        #[source]
        source: Cause,
    },
    /// The module imports something neither WASI nor the engine provides.
    #[error("cannot link {path}: {}", chain(source))]
    Link {
        /// Where the module came from.
        path: String,
        /// The engine's error (names the missing import).
        #[source]
        source: Cause,
    },
    /// The requested entry function is not exported or takes arguments.
    #[error("entry function {name:?} is not runnable: {reason}")]
    EntryFunction {
        /// The export that was asked for.
        name: String,
        /// Why it cannot be called.
        reason: String,
    },
    /// The chosen engine cannot do what the workload needs.
    #[error("engine {engine} does not support {feature}: {reason}")]
    Unsupported {
        /// Engine name.
        engine: &'static str,
        /// The feature asked for.
        feature: &'static str,
        /// Why the engine cannot provide it.
        reason: &'static str,
    },
    /// No compiled-in engine has this name.
    #[error("unknown engine {name:?}; compiled in: {available}")]
    UnknownEngine {
        /// The name that was asked for.
        name: String,
        /// Comma-separated names that would have worked.
        available: String,
    },
    /// The engine exists but the node's operator does not allow it
    /// (`WASMUX_ALLOWED_ENGINES`).
    #[error("engine {name:?} is not allowed on this node; allowed: {allowed}")]
    EngineNotAllowed {
        /// The engine that was chosen.
        name: String,
        /// Comma-separated names the operator allows.
        allowed: String,
    },
    /// A host I/O operation failed while preparing the run.
    #[error("{context}: {source}")]
    Io {
        /// What wasmux was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The engine failed for a reason of its own (not the guest's fault).
    #[error("engine {engine} failed: {}", chain(source))]
    Engine {
        /// Engine name.
        engine: &'static str,
        /// The engine's error.
        #[source]
        source: Cause,
    },
    /// An engine option given as text is malformed or unknown.
    #[error("invalid engine option {option:?}: {reason}")]
    InvalidOption {
        /// The option as given.
        option: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The underlying error of an engine's failure, kept as the [`source`](std::error::Error::source)
/// of wasmux's error (and shown, with its own chain, in its message).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A cause with what wasmux was doing when it happened: shown as "context: cause".
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
struct WithContext {
    context: String,
    #[source]
    source: Cause,
}

/// `error: its source: its source's source`, as one line.
fn chain(error: &Cause) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        // Some errors repeat their source in their own message; say it once.
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = cause.source();
    }
    text
}

/// Process exit code for "the runtime itself failed" (bad bundle, I/O, engine).
pub const EXIT_RUNTIME_ERROR: u8 = 125;
/// Process exit code for "found but not runnable" (invalid module, link error).
pub const EXIT_NOT_RUNNABLE: u8 = 126;
/// Process exit code for "entrypoint not found".
pub const EXIT_NOT_FOUND: u8 = 127;

impl Error {
    /// The process exit code a CLI or shim reports for this error (README, "Exit codes"),
    /// following the shell's 125/126/127 convention.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::EntrypointNotFound { .. } => EXIT_NOT_FOUND,
            Error::NotWasm { .. }
            | Error::NotAWasmWorkload { .. }
            | Error::InvalidModule { .. }
            | Error::Link { .. }
            | Error::EntryFunction { .. }
            | Error::Unsupported { .. } => EXIT_NOT_RUNNABLE,
            Error::InvalidConfig { .. }
            | Error::InvalidBundle(_)
            | Error::InvalidEnv { .. }
            | Error::MountSourceMissing { .. }
            | Error::UnknownEngine { .. }
            | Error::EngineNotAllowed { .. }
            | Error::InvalidOption { .. }
            | Error::Io { .. }
            | Error::Engine { .. } => EXIT_RUNTIME_ERROR,
        }
    }

    /// The engine rejected the module at `path`.
    pub fn invalid_module(path: impl Into<String>, source: impl Into<Cause>) -> Self {
        Error::InvalidModule {
            path: path.into(),
            source: source.into(),
        }
    }

    /// The module at `path` cannot be linked.
    pub fn link(path: impl Into<String>, source: impl Into<Cause>) -> Self {
        Error::Link {
            path: path.into(),
            source: source.into(),
        }
    }

    /// The engine failed for a reason of its own.
    pub fn engine(engine: &'static str, source: impl Into<Cause>) -> Self {
        Error::Engine {
            engine,
            source: source.into(),
        }
    }

    /// The engine failed for a reason of its own while wasmux was doing `context`.
    pub fn engine_while(
        engine: &'static str,
        context: impl Into<String>,
        source: impl Into<Cause>,
    ) -> Self {
        Error::engine(
            engine,
            WithContext {
                context: context.into(),
                source: source.into(),
            },
        )
    }

    /// Wraps an I/O error with what wasmux was doing when it happened.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result type of every fallible wasmux call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `text` with its control characters (terminal escapes, carriage returns) escaped, so
/// bytes from an image reach a terminal or a log as text. Newlines and tabs stay.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    /// An engine's error stays reachable as the source, and its whole chain is in the
    /// message a user reads.
    #[test]
    fn engine_errors_keep_their_source_chain() {
        let err = Error::engine("x", Outer(std::io::Error::other("inner")));
        assert_eq!(err.to_string(), "engine x failed: outer: inner");
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "outer");
        assert!(source.source().is_some());
        let err = Error::engine_while("x", "starting", std::io::Error::other("no threads"));
        assert_eq!(err.to_string(), "engine x failed: starting: no threads");
        let err = Error::invalid_module("m.wasm", "bad magic".to_owned());
        assert_eq!(err.to_string(), "invalid module m.wasm: bad magic");
        assert_eq!(err.exit_code(), EXIT_NOT_RUNNABLE);
    }
}
