//! The one message the container process sends `create` over the handshake pipe:
//! ready to start, failed (with wasmux's message and exit code), or not a Wasm
//! workload. End of file without a message means the process died.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use serde::{Deserialize, Serialize};

use crate::error::{OciError, Result};

/// What the container process reports once it has prepared the run.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "report", rename_all = "kebab-case")]
pub enum Report {
    /// Bundle mapped, module loaded, waiting for `start`.
    Ready {
        /// The bundle's annotations, for `state`.
        annotations: HashMap<String, String>,
        /// The cgroups the process joined, for `delete` to remove.
        cgroups: Vec<PathBuf>,
    },
    /// The bundle cannot run; `create` fails with this.
    Failed {
        /// wasmux's one-line error.
        message: String,
        /// Its exit code (125, 126, 127 or 1).
        exit_code: u8,
    },
    /// The entrypoint is not Wasm and the bundle allows that: a Linux container.
    NotWasm {
        /// What the entrypoint is.
        reason: String,
    },
}

/// Sends `report` and closes the pipe.
pub fn send(pipe: OwnedFd, report: &Report) -> Result<()> {
    let mut line = serde_json::to_vec(report)
        .map_err(|e| OciError::io("encoding the handshake", std::io::Error::other(e)))?;
    line.push(b'\n');
    File::from(pipe)
        .write_all(&line)
        .map_err(|e| OciError::io("reporting to create", e))
}

/// How long `create` waits for the container process's report. Mapping the bundle and
/// compiling a large module without a cache takes seconds; a process that has said
/// nothing after this is stuck, and `create` fails instead of hanging with it.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// Waits up to `timeout` for the report; `None` if the process closed the pipe without
/// one.
pub fn receive(pipe: OwnedFd, timeout: Duration) -> Result<Option<Report>> {
    let failed = |e: std::io::Error| OciError::io("reading the container process's report", e);
    let deadline = Instant::now() + timeout;
    let mut file = File::from(pipe);
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failed(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no report within {} s", timeout.as_secs()),
            )));
        }
        let wait = rustix::event::Timespec::try_from(left).unwrap_or(rustix::event::Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(&file, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&wait)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(failed(e.into())),
        }
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(failed(e)),
        }
    }
    let text = String::from_utf8_lossy(&text);
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| failed(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_cross_a_pipe_and_silence_means_none() {
        for report in [
            Report::Ready {
                annotations: HashMap::from([("k".into(), "v".into())]),
                cgroups: vec!["/sys/fs/cgroup/pids/x".into()],
            },
            Report::Failed {
                message: "entrypoint /x.wasm not found".into(),
                exit_code: 127,
            },
            Report::NotWasm {
                reason: "an ELF executable".into(),
            },
        ] {
            let (r, w) = rustix::pipe::pipe().unwrap();
            send(w, &report).unwrap();
            assert_eq!(receive(r, REPORT_TIMEOUT).unwrap(), Some(report));
        }
        let (r, w) = rustix::pipe::pipe().unwrap();
        drop(w);
        assert_eq!(receive(r, REPORT_TIMEOUT).unwrap(), None);
    }

    /// A process that never reports (stuck on a FIFO, say) fails `create` in time.
    #[test]
    fn silence_past_the_timeout_is_an_error() {
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let err = receive(r, Duration::from_millis(50)).unwrap_err();
        assert!(err.to_string().contains("no report"), "{err}");
    }
}
