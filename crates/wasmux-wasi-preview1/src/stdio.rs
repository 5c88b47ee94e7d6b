//! The guest's standard streams as wasi-common files, from whatever the spec hands
//! over. Reads and writes go through wasmux-core's `GuestFile`, so a kill or deadline
//! ends a guest stuck on its stdio (pipes, sockets, terminals).

use std::any::Any;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};

use wasi_common::file::{FdFlags, FileType, Filestat};
use wasi_common::sync::file::File as WasiHostFile;
use wasi_common::{Error as WasiError, WasiFile};
use wasmux_core::stdio_wait::GuestFile;
use wasmux_core::{Error, Result, RunControl, StdioStream};

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
    let guest = GuestFile::new(file, control);
    let copy = guest
        .file()
        .try_clone()
        .map_err(|e| Error::io("duplicating a stdio handle", e))?;
    let inner: Box<dyn WasiFile> = Box::new(WasiHostFile::from_cap_std(
        cap_std::fs::File::from_std(copy),
    ));
    Ok(Box::new(KillableStream { inner, guest }))
}

/// A standard stream: reads and writes go through a [`GuestFile`], which gives way to
/// a kill when the stream could block (the guest's call then fails, and its next fuel
/// check ends it); it is a stream, not a file, to the guest (no seeking, the file type
/// wasmtime reports); everything else is wasi-common's file.
struct KillableStream {
    inner: Box<dyn WasiFile>,
    guest: GuestFile,
}

#[async_trait::async_trait]
impl WasiFile for KillableStream {
    fn as_any(&self) -> &dyn Any {
        self
    }

    /// A terminal is a character device, anything else `unknown`, as wasmtime reports
    /// its stdio: wasi-libc's `isatty` asks for a character device without seek
    /// rights, which `/dev/null` or a pipe would otherwise pass for.
    async fn get_filetype(&self) -> Result<FileType, WasiError> {
        Ok(if self.inner.isatty() {
            FileType::CharacterDevice
        } else {
            FileType::Unknown
        })
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

    /// Into the first non-empty buffer; the guest's libc reads on for more.
    async fn read_vectored<'a>(&self, bufs: &mut [IoSliceMut<'a>]) -> Result<u64, WasiError> {
        let Some(first) = bufs.iter_mut().find(|b| !b.is_empty()) else {
            return Ok(0);
        };
        Ok(self.guest.read_some(first)? as u64)
    }

    /// A prefix of the first non-empty buffer; the guest's libc writes the rest.
    async fn write_vectored<'a>(&self, bufs: &[IoSlice<'a>]) -> Result<u64, WasiError> {
        let Some(first) = bufs.iter().find(|b| !b.is_empty()) else {
            return Ok(0);
        };
        Ok(self.guest.write_some(first)? as u64)
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
