//! `wasmux-oci`: an OCI runtime command with runc's command line, so podman/conmon,
//! containerd's runc shim, dockerd and Kubernetes (through containerd) run Wasm
//! containers on wasmux. The container is the one the spec describes (namespaces,
//! cgroups, user, capabilities, seccomp, rlimits, pivot_root into its rootfs), built by
//! youki's libcontainer; wasmux runs in its init, the one process its caller reaps, so
//! the Wasm sandbox is the first wall, not the only one. Linux containers under the
//! same runtime entry go to a delegate runtime (runc).

mod container_id;
mod create;
mod delegate;
mod error;
mod executor;
mod features;
mod lifecycle;
mod log;
mod process;
mod settings;
mod signal;
mod state;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::error::{OciError, Result};
use crate::log::LogFormat;
use crate::state::{Lookup, Root};

#[derive(Parser)]
#[command(
    name = "wasmux-oci",
    // A flag given twice takes its last value, as with runc (a wrapper's `--root`
    // before the caller's, say).
    args_override_self = true,
    about = "OCI runtime for Wasm containers on wasmux (runc's command line)"
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

/// runc's global flags, given before the command.
#[derive(Debug, clap::Args)]
pub struct Globals {
    /// Where container state lives [default: /run/wasmux-oci, or
    /// $XDG_RUNTIME_DIR/wasmux-oci for a rootless caller, as runc].
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Append log lines to this file (errors, warnings; debug with --debug).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Log line format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log debug events too.
    #[arg(long)]
    debug: bool,
    /// Accepted: systemd-style cgroup paths are not placed (docs/oci-runtime.md).
    #[arg(long)]
    systemd_cgroup: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container: map the bundle, load the module, wait for `start`.
    Create(create::CreateArgs),
    /// Start a created container.
    Start {
        /// The container ID.
        id: String,
    },
    /// Print a container's state as JSON.
    State {
        /// The container ID.
        id: String,
    },
    /// Send a signal to a container (default SIGTERM).
    Kill {
        /// Signal every process of the container (there is one).
        #[arg(short, long)]
        all: bool,
        /// The container ID.
        id: String,
        /// A signal number or name (`9`, `KILL`, `SIGKILL`).
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and everything wasmux-oci kept for it.
    Delete {
        /// Kill it first if it still runs.
        #[arg(short, long)]
        force: bool,
        /// The container ID.
        id: String,
    },
    /// Print what this runtime supports (runc's features JSON).
    Features,
    /// A container's detached cache fill (the module on stdin); started by `create` only.
    #[command(name = wasmux::pending::COMPILE_COMMAND, hide = true)]
    FillCache {
        engine: String,
        cache_dir: std::path::PathBuf,
        options: Vec<String>,
    },
    /// runc commands without meaning for a Wasm container.
    #[command(external_subcommand)]
    Other(Vec<OsString>),
}

fn main() -> ExitCode {
    // The version names the compiled-in engines, so it is known only at run time.
    let version: &'static str = Box::leak(features::version_text().into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let globals = &cli.globals;
    if let Err(e) = log::init(globals.log.as_deref(), globals.log_format, globals.debug) {
        eprintln!("wasmux-oci: {e}");
        return ExitCode::FAILURE;
    }
    match run(globals, cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("wasmux-oci: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(globals: &Globals, command: Command) -> Result<u8> {
    // `features` needs no state root; every other command opens (or makes) it.
    let root = || Root::open(&globals.root.clone().unwrap_or_else(settings::default_root));
    match command {
        Command::Features => println!("{:#}", features::document()),
        Command::Create(args) => create::create(globals, &root()?, &args)?,
        Command::Start { id } => lifecycle::start(&root()?, &id)?,
        Command::State { id } => lifecycle::state(&root()?, &id)?,
        Command::Kill { id, signal, .. } => {
            lifecycle::kill(&root()?, &id, signal::parse(&signal)?)?
        }
        Command::Delete { id, force } => lifecycle::delete(&root()?, &id, force)?,
        Command::FillCache {
            engine,
            cache_dir,
            options,
        } => {
            wasmux::pending::compile_from_stdin(&engine, &cache_dir, &options)?;
        }
        Command::Other(args) => return Err(other_command(&root()?, &args)),
    }
    Ok(0)
}

/// runc's other commands: the delegate's when they name one of its containers, else
/// a clear refusal.
fn other_command(root: &Root, args: &[OsString]) -> OciError {
    let name = args.first().and_then(|a| a.to_str()).unwrap_or("");
    let rest = args.get(1..).unwrap_or_default();
    let names_delegated = rest.iter().filter_map(|a| a.to_str()).any(|arg| {
        container_id::validate(arg).is_ok() && matches!(root.lookup(arg), Ok(Lookup::Delegated))
    });
    if names_delegated {
        return delegate::exec(format!("{name} names a Linux container"));
    }
    let (command, reason) = match name {
        "exec" => (
            "exec",
            "a Wasm guest is one module instance, with no way to start a second process in it",
        ),
        "pause" | "resume" => ("pause/resume", "a running guest cannot be frozen"),
        "checkpoint" | "restore" => ("checkpoint/restore", "a guest's state cannot be saved"),
        "update" => ("update", "limits are fixed when the guest starts"),
        "ps" => ("ps", "the container is one process: its pid is in `state`"),
        "events" => ("events", "wasmux-oci keeps no cgroup statistics"),
        "run" => ("run", "use create, then start"),
        "list" | "spec" => (
            "list/spec",
            "wasmux-oci implements the lifecycle commands only",
        ),
        _ => return OciError::UnknownCommand(name.to_owned()),
    };
    OciError::Unsupported { command, reason }
}
