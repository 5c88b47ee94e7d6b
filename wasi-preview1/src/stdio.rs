//! The guest's standard streams as wasi-common files, from whatever the spec hands over.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use wasi_common::WasiFile;
use wasi_common::sync::file::File as WasiHostFile;
use wasmux_engine_api::{Error, Result, StdioStream};

/// Which of the host process's own streams an `Inherit` stream stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostStream {
    Stdin,
    Stdout,
    Stderr,
}

impl HostStream {
    /// A descriptor of its own on the host stream, so the run never closes the host's.
    fn duplicate(self) -> std::io::Result<OwnedFd> {
        match self {
            HostStream::Stdin => std::io::stdin().as_fd().try_clone_to_owned(),
            HostStream::Stdout => std::io::stdout().as_fd().try_clone_to_owned(),
            HostStream::Stderr => std::io::stderr().as_fd().try_clone_to_owned(),
        }
    }
}

/// One standard stream of the guest: `host` says which one, and what `Inherit` means.
pub(crate) fn stream(stream: StdioStream, host: HostStream) -> Result<Box<dyn WasiFile>> {
    let file = match stream.into_file_or_inherit(host != HostStream::Stdin)? {
        Some(file) => file,
        None => host
            .duplicate()
            .map(File::from)
            .map_err(|e| Error::io("duplicating the host's standard stream", e))?,
    };
    Ok(Box::new(WasiHostFile::from_cap_std(
        cap_std::fs::File::from_std(file),
    )))
}
