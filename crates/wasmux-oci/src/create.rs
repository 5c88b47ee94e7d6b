//! `create`: claim the ID; on the host, map the bundle and load its module through the
//! node's cache (so every error a user can fix fails `create` with wasmux's message,
//! and compiled code is written by this process, outside every container); then build
//! the container the spec describes with youki's libcontainer, whose init loads the
//! module inside it and waits for `start`. `create` records the container process,
//! writes the pid file and exits, leaving the process to the caller, which reaps it
//! (conmon and containerd's shim are subreapers).

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use wasmux::{Bundle, Error as WasmuxError};

use crate::Globals;
use crate::delegate;
use crate::error::{OciError, Result};
use crate::executor::{HostDecisions, WasmExecutor};
use crate::process::ProcessIdentity;
use crate::settings;
use crate::state::{ContainerDir, Record, Root, write_atomically};

/// `create`'s arguments, as conmon, containerd's runc shim and dockerd pass them.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The bundle directory (config.json and the rootfs).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Where to write the container process's pid.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A Unix socket to send the pty master to; the container gets the slave as its
    /// terminal.
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Mount the rootfs without pivot_root (for a rootfs on a ramdisk), as runc.
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted: libcontainer makes no session keyring either way.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Descriptors 3..3+N the container process keeps (socket activation).
    #[arg(long, value_name = "N")]
    pub preserve_fds: Option<u32>,
    /// The container ID.
    pub id: String,
}

/// What `create` made of a bundle.
enum Created {
    /// A Wasm container, waiting for `start`.
    Wasm,
    /// Not Wasm (the reason says what it is): the delegate's.
    NotWasm(String),
}

/// Runs `create`.
pub fn create(globals: &Globals, root: &Root, args: &CreateArgs) -> Result<()> {
    let id = crate::container_id::validate(&args.id)?;
    let bundle = std::path::absolute(&args.bundle)
        .map_err(|e| OciError::io(format!("bundle {}", args.bundle.display()), e))?;
    let dir = root.container(id);
    dir.claim()?;
    match create_container(globals, &dir, &bundle, args) {
        Ok(Created::Wasm) => Ok(()),
        Ok(Created::NotWasm(reason)) => {
            dir.remove()?;
            Err(delegate::exec(reason))
        }
        Err(e) => {
            crate::lifecycle::destroy(&dir);
            Err(e)
        }
    }
}

fn create_container(
    globals: &Globals,
    dir: &ContainerDir,
    bundle_dir: &Path,
    args: &CreateArgs,
) -> Result<Created> {
    let bundle = Bundle::load(bundle_dir)?;
    let mut record = Record {
        bundle: bundle_dir.to_owned(),
        process: None,
        created: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
        annotations: bundle.spec().annotations().clone().unwrap_or_default(),
        started: false,
    };
    dir.write_record(&record)?;
    let decided = match prepare_on_host(&bundle) {
        Ok(decided) => decided,
        Err(WasmuxError::NotAWasmWorkload { reason }) => return Ok(Created::NotWasm(reason)),
        Err(e) => return Err(e.into()),
    };
    require_mount_namespace(bundle.spec())?;
    let creating = dir.hold_creation_lock()?;
    let container = ContainerBuilder::new(dir.id().to_owned(), SyscallType::Linux)
        .with_executor(WasmExecutor::new(decided, creating))
        .with_root_path(dir.libcontainer_root())
        .map_err(container_error)?
        .with_console_socket(args.console_socket.as_ref())
        .with_preserved_fds(
            args.preserve_fds
                .unwrap_or(0)
                .try_into()
                .unwrap_or(i32::MAX),
        )
        .as_init(bundle_dir)
        .with_systemd(globals.systemd_cgroup)
        .with_detach(true)
        .with_no_pivot(args.no_pivot)
        .build()
        .map_err(container_error)?;
    let pid = container
        .pid()
        .map(|pid| pid.as_raw())
        .ok_or_else(|| OciError::ProcessGone {
            id: dir.id().to_owned(),
            when: "before it was ready",
        })?;
    record.process = Some(
        ProcessIdentity::of(pid).ok_or_else(|| OciError::ProcessGone {
            id: dir.id().to_owned(),
            when: "right after it was ready",
        })?,
    );
    dir.write_record(&record)?;
    if let Some(pid_file) = &args.pid_file {
        write_atomically(pid_file, pid.to_string().as_bytes(), 0o644)?;
    }
    Ok(Created::Wasm)
}

/// A spec without a mount namespace is refused: libcontainer would make the
/// container's mounts (proc, dev, cgroup, volumes) in the caller's namespace, on the
/// host, and leave them there. Every manager asks for one.
fn require_mount_namespace(spec: &Spec) -> Result<()> {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    let has_mount =
        namespaces.is_some_and(|all| all.iter().any(|n| n.typ() == LinuxNamespaceType::Mount));
    if has_mount {
        return Ok(());
    }
    Err(OciError::Container {
        message: "linux.namespaces has no mount namespace: the container's mounts would \
                  be made in the host's; wasmux-oci needs one"
            .into(),
        exit_code: 1,
    })
}

/// Everything a user can get wrong, checked on the host with wasmux's own messages,
/// and the module compiled into the node's cache by this process, outside every
/// container. Returns what the init is to follow: the engine, the limit, the address
/// and a sealed copy of the cache entry.
fn prepare_on_host(bundle: &Bundle) -> wasmux::Result<HostDecisions> {
    let spec = bundle.run_spec()?;
    let launcher = settings::launcher();
    let cache = launcher.cache();
    let requested = bundle.requested();
    let launch = launcher.load(&spec.wasm, &requested, cache.clone())?;
    if launch.cache_event.is_warning() {
        tracing::warn!("{}", launch.cache_event);
    }
    // A tiered engine's optimized code: made by a helper process (this binary's hidden
    // subcommand) outside the container, else now.
    if let Some(pending) = launch.pending
        && let Err(failed) = pending.hand_to(compile_helper)
    {
        tracing::warn!(
            "no background cache fill ({}); compiling optimized code now",
            failed.error
        );
        failed.pending.compile_now();
    }
    let entry = cache.and_then(|cache| {
        let key = launch.engine.artifact_key(&spec.wasm, &cache)?;
        cache
            .sealed_entry(&key)
            .inspect_err(|e| tracing::warn!(error = %e, "no sealed cache entry for the container"))
            .ok()
            .flatten()
    });
    Ok(HostDecisions {
        engine: launch.engine.name().to_owned(),
        options: launcher.options_for(&requested),
        limits: spec.limits,
        listen: wasmux::http_listen(bundle.spec().annotations().as_ref(), &spec.env),
        entry,
    })
}

/// This binary in its hidden compile mode: the helper deferred optimized code goes to.
fn compile_helper() -> std::io::Result<std::process::Command> {
    let mut helper = std::process::Command::new(std::env::current_exe()?);
    helper.arg(wasmux::pending::COMPILE_COMMAND);
    Ok(helper)
}

/// libcontainer's error, with its whole chain (the init's own reason comes last).
pub fn container_error(error: libcontainer::error::LibcontainerError) -> OciError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    OciError::Container {
        message,
        exit_code: 1,
    }
}
