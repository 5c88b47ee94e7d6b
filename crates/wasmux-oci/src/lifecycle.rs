//! `start`, `state`, `kill` and `delete`: each reads the record and the process, never
//! an engine, so each is a quick process start.

use std::time::Duration;

use libcontainer::container::Container;
use oci_spec::runtime::ContainerState;
use rustix::process::Signal;
use serde::Serialize;

use crate::delegate;
use crate::error::{OciError, Result};
use crate::state::{ContainerDir, Lookup, Record, Root};

/// How long `delete --force` waits for a killed process to exit.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// A container of ours, or the delegate takes the command over (this call then never
/// returns), or a "does not exist" error.
fn find(root: &Root, id: &str) -> Result<(ContainerDir, Record)> {
    let id = crate::container_id::validate(id)?;
    match root.lookup(id)? {
        Lookup::Ours(dir, record) => Ok((dir, record)),
        Lookup::Delegated => Err(delegate::exec(format!(
            "container {id} is not a Wasm container"
        ))),
        Lookup::Missing => Err(OciError::NotFound(id.to_owned())),
    }
}

/// `start`: releases the waiting container process.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let (dir, mut record) = find(root, id)?;
    let status = dir.status(&record);
    if status != ContainerState::Created {
        return Err(OciError::NotCreated {
            id: id.to_owned(),
            status,
        });
    }
    let mut container =
        Container::load(dir.libcontainer_dir()).map_err(crate::create::container_error)?;
    container.start().map_err(|e| {
        // The init may have ended between the status check and the notify.
        if record.process.is_some_and(|p| !p.is_alive()) {
            OciError::ProcessGone {
                id: id.to_owned(),
                when: "before start",
            }
        } else {
            crate::create::container_error(e)
        }
    })?;
    record.started = true;
    dir.write_record(&record)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StateDocument<'a> {
    oci_version: &'static str,
    id: &'a str,
    status: ContainerState,
    pid: i32,
    bundle: &'a std::path::Path,
    created: &'a str,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    annotations: &'a std::collections::HashMap<String, String>,
}

/// `state`: the container's state as JSON on stdout.
pub fn state(root: &Root, id: &str) -> Result<()> {
    let (dir, record) = find(root, id)?;
    let status = dir.status(&record);
    let pid = match (status, record.process) {
        (ContainerState::Created | ContainerState::Running, Some(p)) => p.pid,
        _ => 0,
    };
    let document = StateDocument {
        oci_version: crate::features::OCI_VERSION,
        id: dir.id(),
        status,
        pid,
        bundle: &record.bundle,
        created: &record.created,
        annotations: &record.annotations,
    };
    let json = serde_json::to_string_pretty(&document)
        .map_err(|e| OciError::io("encoding the state", std::io::Error::other(e)))?;
    println!("{json}");
    Ok(())
}

/// `kill`: sends `signal` to the container process (one process, so `--all` is the same).
pub fn kill(root: &Root, id: &str, signal: Signal) -> Result<()> {
    let (dir, record) = find(root, id)?;
    let not_running = || OciError::NotRunning(id.to_owned());
    let process = match (dir.status(&record), record.process) {
        (ContainerState::Created | ContainerState::Running, Some(p)) => p,
        _ => return Err(not_running()),
    };
    process.signal(signal).map_err(|e| match e.raw_os_error() {
        Some(code) if code == rustix::io::Errno::SRCH.raw_os_error() => not_running(),
        _ => OciError::io(format!("signalling container {id}"), e),
    })
}

/// `delete`: removes a stopped container; a created one is killed first (as runc
/// does), a running one only with `--force`. Unknown IDs are fine with `--force`.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let (dir, record) = match find(root, id) {
        Err(OciError::NotFound(_)) if force => return Ok(()),
        found => found?,
    };
    let status = dir.status(&record);
    match (status, record.process) {
        (ContainerState::Running, _) if !force => {
            return Err(OciError::NotStopped {
                id: id.to_owned(),
                status,
            });
        }
        (ContainerState::Created | ContainerState::Running, Some(process)) => {
            let _ = process.signal(Signal::KILL);
            if !process.wait_gone(KILL_GRACE) {
                return Err(OciError::NotStopped {
                    id: id.to_owned(),
                    status,
                });
            }
        }
        _ => {}
    }
    destroy(&dir);
    Ok(())
}

/// Removes everything a container left: libcontainer's part (its cgroup, poststop
/// hooks, its state) first, then the directory. Best effort, logged: used by `delete`
/// and by a `create` that failed half-way.
pub fn destroy(dir: &ContainerDir) {
    kill_creators(dir);
    if dir.libcontainer_dir().is_dir() {
        match Container::load(dir.libcontainer_dir()) {
            Ok(mut container) => {
                if let Err(e) = container.delete(true) {
                    tracing::warn!(error = %e, "libcontainer could not delete the container");
                }
            }
            Err(e) => tracing::warn!(error = %e, "libcontainer's state is unreadable"),
        }
    }
    if let Err(e) = dir.remove() {
        tracing::warn!(error = %e, "could not remove the container's state");
    }
}

/// Kills what a `create` killed half-way left running (its intermediate process, an
/// init waiting for a `start` no one can send), until none holds the creation lock
/// (for at most [`KILL_GRACE`]). They are not in the record yet, and may not have
/// joined the container's cgroup either.
fn kill_creators(dir: &ContainerDir) {
    let until = std::time::Instant::now() + KILL_GRACE;
    loop {
        let creators = dir.creators();
        if creators.is_empty() || std::time::Instant::now() > until {
            return;
        }
        for pid in creators {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
