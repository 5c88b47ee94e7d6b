//! The one message the container process sends `create` over the handshake pipe:
//! ready to start, failed (with wasmux's message and exit code), or not a Wasm
//! workload. End of file without a message means the process died.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

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

/// Waits for the report; `None` if the process closed the pipe without one.
pub fn receive(pipe: OwnedFd) -> Result<Option<Report>> {
    let mut text = String::new();
    File::from(pipe)
        .read_to_string(&mut text)
        .map_err(|e| OciError::io("reading the container process's report", e))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text).map(Some).map_err(|e| {
        OciError::io(
            "reading the container process's report",
            std::io::Error::other(e),
        )
    })
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
            assert_eq!(receive(r).unwrap(), Some(report));
        }
        let (r, w) = rustix::pipe::pipe().unwrap();
        drop(w);
        assert_eq!(receive(r).unwrap(), None);
    }
}
