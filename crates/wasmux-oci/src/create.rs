//! `create`: claim the ID, start the container process and wait for its report. The
//! process maps the bundle and loads the module itself (so the work is done once, in
//! the process that runs it), then blocks on the start fifo; `create` records it,
//! writes the pid file and exits, leaving it to the caller, which reaps it (conmon and
//! containerd's shim are subreapers).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use chrono::{SecondsFormat, Utc};

use crate::Globals;
use crate::cgroups;
use crate::delegate;
use crate::error::{OciError, Result};
use crate::fds;
use crate::handshake::{self, Report};
use crate::process::ProcessIdentity;
use crate::state::{ContainerDir, Record, Root, write_atomically};

/// `create`'s arguments, as conmon and containerd's runc shim pass them.
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
    /// Accepted: there is no pivot_root to skip.
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted: there is no session keyring to skip.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Accepted: extra descriptors (socket activation) mean nothing to a WASI guest.
    #[arg(long, value_name = "N")]
    pub preserve_fds: Option<u32>,
    /// The container ID.
    pub id: String,
}

/// Runs `create`.
pub fn create(globals: &Globals, root: &Root, args: &CreateArgs) -> Result<()> {
    let id = crate::container_id::validate(&args.id)?;
    let bundle = std::path::absolute(&args.bundle)
        .map_err(|e| OciError::io(format!("bundle {}", args.bundle.display()), e))?;
    let dir = root.container(id);
    dir.claim()?;
    let mut record = Record {
        bundle: bundle.clone(),
        process: None,
        created: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
        annotations: Default::default(),
        cgroups: Vec::new(),
    };
    match start_container_process(globals, &dir, &mut record, args) {
        Ok(None) => Ok(()),
        Ok(Some(not_wasm)) => {
            dir.remove()?;
            Err(delegate::exec(not_wasm))
        }
        Err(e) => {
            if let Some(process) = record.process {
                let _ = process.signal(rustix::process::Signal::KILL);
                process.wait_gone(std::time::Duration::from_secs(10));
            }
            cgroups::remove(&record.cgroups);
            // The first error is the one to report; a failed cleanup is only logged.
            if let Err(cleanup) = dir.remove() {
                tracing::warn!(error = %cleanup, "could not remove the failed container's state");
            }
            Err(e)
        }
    }
}

/// Starts the container process and waits for its report. `Ok(Some(reason))` means
/// the bundle is a Linux container, for the delegate.
fn start_container_process(
    globals: &Globals,
    dir: &ContainerDir,
    record: &mut Record,
    args: &CreateArgs,
) -> Result<Option<String>> {
    dir.write_record(record)?;
    dir.make_start_fifo()?;
    let (report_read, report_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| OciError::io("creating the handshake pipe", e))?;
    // This very binary, whatever its path; named as users know it in `ps`.
    let mut command = Command::new("/proc/self/exe");
    command.arg0("wasmux-oci");
    globals.forward(&mut command);
    command.arg("init").arg("--bundle").arg(&record.bundle);
    if let Some(socket) = &args.console_socket {
        let socket =
            std::path::absolute(socket).map_err(|e| OciError::io("console socket path", e))?;
        command.arg("--console-socket").arg(socket);
    }
    command
        .arg(dir.id())
        .env(
            fds::SYNC_FD_VAR,
            fds::inheritable(&report_write)?.to_string(),
        )
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .map_err(|e| OciError::io("starting the container process", e))?;
    drop(report_write);
    let report = match handshake::receive(report_read, handshake::REPORT_TIMEOUT) {
        Ok(report) => report,
        Err(e) => {
            // Not left waiting on a fifo that is about to be removed.
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    match report {
        Some(Report::Ready {
            annotations,
            cgroups,
        }) => {
            record.annotations = annotations;
            record.cgroups = cgroups;
        }
        Some(Report::Failed { message, exit_code }) => {
            let _ = child.wait();
            return Err(OciError::Container { message, exit_code });
        }
        Some(Report::NotWasm { reason }) => {
            let _ = child.wait();
            return Ok(Some(reason));
        }
        None => {
            let _ = child.wait();
            return Err(OciError::ProcessGone {
                id: dir.id().to_owned(),
                when: "before it was ready",
            });
        }
    }
    let pid =
        i32::try_from(child.id()).map_err(|e| OciError::io("pid", std::io::Error::other(e)))?;
    record.process = Some(
        ProcessIdentity::of(pid).ok_or_else(|| OciError::ProcessGone {
            id: dir.id().to_owned(),
            when: "right after it was ready",
        })?,
    );
    dir.write_record(record)?;
    if let Some(pid_file) = &args.pid_file {
        write_atomically(pid_file, pid.to_string().as_bytes(), 0o644)?;
    }
    // The child is not waited for: once this process exits it belongs to the caller.
    drop(child);
    Ok(None)
}
