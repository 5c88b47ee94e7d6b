//! The guest's standard streams as wasi-common files, from whatever the spec hands
//! over. Reads and writes that could block (pipes, sockets, terminals) first wait in
//! polls that watch the run's control, and a pipe is written in chunks it takes
//! without blocking, so a kill or deadline ends a guest stuck on its stdio.

use std::any::Any;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};

use wasi_common::file::{FdFlags, FileType, Filestat};
use wasi_common::snapshots::preview_1::types::Errno;
use wasi_common::sync::file::File as WasiHostFile;
use wasi_common::{Error as WasiError, WasiFile};
use wasmux_engine_api::stdio_wait::{Direction, PIPE_ATOMIC_WRITE, may_block, wait_ready};
use wasmux_engine_api::{Error, Result, RunControl, StdioStream};

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
pub(crate) fn stream(
    stream: StdioStream,
    host: HostStream,
    control: &RunControl,
) -> Result<Box<dyn WasiFile>> {
    let file = match stream.into_file_or_inherit(host != HostStream::Stdin)? {
        Some(file) => file,
        None => host
            .duplicate()
            .map(File::from)
            .map_err(|e| Error::io("duplicating the host's standard stream", e))?,
    };
    let inner: Box<dyn WasiFile> =
        Box::new(WasiHostFile::from_cap_std(cap_std::fs::File::from_std(
            file.try_clone()
                .map_err(|e| Error::io("duplicating a stdio handle", e))?,
        )));
    if !may_block(&file) {
        return Ok(inner);
    }
    Ok(Box::new(KillableStream {
        inner,
        fd: OwnedFd::from(file),
        control: control.clone(),
    }))
}

/// A stream that could block, waiting in polls that give way to a kill.
struct KillableStream {
    inner: Box<dyn WasiFile>,
    /// The same open file, for polling.
    fd: OwnedFd,
    control: RunControl,
}

impl KillableStream {
    fn ready(&self, direction: Direction) -> Result<(), WasiError> {
        match wait_ready(&self.fd, direction, &self.control) {
            Ok(true) => Ok(()),
            // Killed: the guest's call fails, and its next fuel check ends it.
            Ok(false) | Err(_) => Err(Errno::Io.into()),
        }
    }
}

#[async_trait::async_trait]
impl WasiFile for KillableStream {
    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn get_filetype(&self) -> Result<FileType, WasiError> {
        self.inner.get_filetype().await
    }

    fn pollable(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.inner.pollable()
    }

    fn isatty(&self) -> bool {
        self.inner.isatty()
    }

    async fn get_fdflags(&self) -> Result<FdFlags, WasiError> {
        self.inner.get_fdflags().await
    }

    async fn set_fdflags(&mut self, flags: FdFlags) -> Result<(), WasiError> {
        self.inner.set_fdflags(flags).await
    }

    async fn get_filestat(&self) -> Result<Filestat, WasiError> {
        self.inner.get_filestat().await
    }

    async fn read_vectored<'a>(&self, bufs: &mut [IoSliceMut<'a>]) -> Result<u64, WasiError> {
        self.ready(Direction::Read)?;
        self.inner.read_vectored(bufs).await
    }

    /// At most what a pipe takes whole once writable; the guest's libc writes the rest.
    async fn write_vectored<'a>(&self, bufs: &[IoSlice<'a>]) -> Result<u64, WasiError> {
        let Some(first) = bufs.iter().find(|b| !b.is_empty()) else {
            return Ok(0);
        };
        self.ready(Direction::Write)?;
        let chunk = &first[..first.len().min(PIPE_ATOMIC_WRITE)];
        self.inner.write_vectored(&[IoSlice::new(chunk)]).await
    }

    fn num_ready_bytes(&self) -> Result<u64, WasiError> {
        self.inner.num_ready_bytes()
    }

    async fn readable(&self) -> Result<(), WasiError> {
        self.inner.readable().await
    }

    async fn writable(&self) -> Result<(), WasiError> {
        self.inner.writable().await
    }
}
