//! The container process (`wasmux-oci init`, started only by `create`). It maps the
//! bundle and loads the module, reports to `create`, blocks on the start fifo until
//! `start`, then runs the guest and exits with the contract's exit code. Signals sent
//! to it (`kill`, `podman stop`) end the guest through its `RunControl`, so it still
//! exits with 128 + signal and its scratch directories are removed.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use wasmux::{Bundle, LoadedModule, PendingCompile, RunControl, RunSpec};

use crate::console;
use crate::error::{OciError, Result};
use crate::handshake::{self, Report};
use crate::settings;
use crate::state::{ContainerDir, Root};

/// `init`'s arguments, from `create`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The bundle directory, absolute.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Where to send the pty master, if the container has a terminal.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// The container ID.
    pub id: String,
}

/// A run ready to start.
struct ReadyToStart {
    module: LoadedModule,
    /// Optimized code to compile after the run, if no helper could take it.
    pending: Option<PendingCompile>,
    spec: RunSpec,
    annotations: HashMap<String, String>,
    cgroups: Vec<PathBuf>,
}

/// Runs the container process; returns its exit code.
/// `report_pipe` is the handshake pipe, adopted before the log was opened
/// ([`crate::fds::adopt_sync_fd_and_close_the_rest`]).
pub fn init(root: &Root, args: &InitArgs, report_pipe: OwnedFd) -> Result<u8> {
    let dir = root.container(crate::container_id::validate(&args.id)?);
    // A session of its own: the caller's terminal and process group are not the
    // container's (and a console needs a session leader).
    let _ = rustix::process::setsid();
    let ready = match prepare(&dir, args) {
        Ok(ready) => ready,
        Err(OciError::Wasmux(wasmux::Error::NotAWasmWorkload { reason })) => {
            handshake::send(report_pipe, &Report::NotWasm { reason })?;
            return Ok(0);
        }
        Err(e) => {
            let exit_code = e.exit_code();
            let message = e.to_string();
            handshake::send(report_pipe, &Report::Failed { message, exit_code })?;
            return Ok(exit_code);
        }
    };
    handshake::send(
        report_pipe,
        &Report::Ready {
            annotations: ready.annotations,
            cgroups: ready.cgroups,
        },
    )?;
    wait_for_start(&dir)?;
    let control = RunControl::new();
    wasmux::signals::forward_terminating(&control)
        .map_err(|e| OciError::io("forwarding signals to the guest", e))?;
    let status = ready.module.run(ready.spec, &control);
    if let Some(pending) = ready.pending {
        pending.compile_now();
    }
    Ok(status?.exit_code())
}

/// Everything that can fail before `start`, so that it fails `create`.
fn prepare(dir: &ContainerDir, args: &InitArgs) -> Result<ReadyToStart> {
    let mut bundle = Bundle::load(&args.bundle)?;
    bundle.set_scratch_root(dir.scratch_dir());
    // Decides Wasm or Linux before anything is sent on the console socket, which
    // belongs to the delegate in the second case.
    let spec = bundle.run_spec()?;
    let process = bundle.spec().process().as_ref();
    if let Some(socket) = &args.console_socket {
        let size = process.and_then(|p| p.console_size()).and_then(|b| {
            Some((
                u16::try_from(b.height()).ok()?,
                u16::try_from(b.width()).ok()?,
            ))
        });
        console::attach(socket, size)?;
    }
    crate::resources::report_unenforced(bundle.spec());
    let launcher = settings::launcher();
    let launch = launcher.load(&spec.wasm, bundle.requested_engine(), launcher.cache())?;
    if launch.cache_event.is_warning() {
        tracing::warn!("{}", launch.cache_event);
    }
    // Baseline code now; the optimized code for the next container comes from a
    // helper process (this binary's hidden subcommand), started before this one joins
    // the container's cgroup so that deleting the container does not end it. If it
    // cannot start, this process compiles the code once the guest is done.
    let pending = launch.pending.and_then(|pending| {
        let failed = pending.hand_to(compile_helper).err()?;
        tracing::warn!(
            "no background cache fill ({}); compiling optimized code after the run",
            failed.error
        );
        Some(failed.pending)
    });
    // Last, so that no failure before it leaves a cgroup behind.
    let cgroups = crate::cgroups::place_self(bundle.spec());
    Ok(ReadyToStart {
        module: launch.module,
        pending,
        spec,
        annotations: bundle.spec().annotations().clone().unwrap_or_default(),
        cgroups,
    })
}

/// This binary in its hidden compile mode: the helper deferred optimized code goes to.
fn compile_helper() -> std::io::Result<std::process::Command> {
    let mut helper = std::process::Command::new(std::env::current_exe()?);
    helper.arg(wasmux::pending::COMPILE_COMMAND);
    Ok(helper)
}

/// Blocks until `start` opens the fifo's other end, then tells it so.
fn wait_for_start(dir: &ContainerDir) -> Result<()> {
    let path = dir.start_fifo();
    let mut fifo = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| OciError::io(format!("waiting for start on {}", path.display()), e))?;
    fifo.write_all(b"0")
        .map_err(|e| OciError::io("acknowledging start", e))
}
