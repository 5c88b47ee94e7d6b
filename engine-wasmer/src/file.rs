//! [`SyncFile`]: a host file, pipe or socket as a wasmer-wasix file, for the guest's
//! standard streams and for every file it opens in its preopens.
//!
//! Reads, writes and seeks go straight to the descriptor, synchronously, on the guest's
//! own thread. virtual-fs's host file goes through tokio's file, which reports a write
//! as done before it happens: a full disk (ENOSPC) then never reaches the guest, and
//! output still in flight when the run ends can be lost or reordered.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use wasmer_wasix::VirtualFile;
use wasmer_wasix::virtual_fs::{AsyncRead, AsyncSeek, AsyncWrite, FsError, ReadBuf};
use wasmux_engine_api::{Error, Result, StdioStream};

/// Hint for how much a stream can take or give at once.
const READY_HINT: usize = 64 * 1024;

/// An open host file as the guest sees it.
#[derive(Debug)]
pub(crate) struct SyncFile {
    file: File,
    /// Where the file lives, for `unlink`; `None` for a standard stream.
    host_path: Option<PathBuf>,
    /// Opened through a read-only preopen: unlinking through this handle is refused too.
    read_only: bool,
    /// The result of the last `start_seek`, for `poll_complete`.
    seek: Option<io::Result<u64>>,
}

impl SyncFile {
    /// A file opened in a preopen.
    pub(crate) fn opened(file: File, host_path: PathBuf, read_only: bool) -> Self {
        SyncFile {
            file,
            host_path: Some(host_path),
            read_only,
            seek: None,
        }
    }

    /// A standard stream of the guest; `host_fd` is the host's own stream it inherits.
    pub(crate) fn stdio(stream: StdioStream, write: bool, host_fd: impl AsFd) -> Result<Self> {
        let file = match stream.into_file_or_inherit(write)? {
            Some(file) => file,
            None => host_fd
                .as_fd()
                .try_clone_to_owned()
                .map(File::from)
                .map_err(|e| Error::io("duplicating the host's standard stream", e))?,
        };
        Ok(SyncFile {
            file,
            host_path: None,
            read_only: false,
            seek: None,
        })
    }

    fn time(&self, which: fn(&std::fs::Metadata) -> io::Result<SystemTime>) -> u64 {
        self.file
            .metadata()
            .and_then(|m| which(&m))
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64)
    }
}

impl VirtualFile for SyncFile {
    fn last_accessed(&self) -> u64 {
        self.time(std::fs::Metadata::accessed)
    }

    fn last_modified(&self) -> u64 {
        self.time(std::fs::Metadata::modified)
    }

    fn created_time(&self) -> u64 {
        self.time(std::fs::Metadata::created)
    }

    fn size(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }

    fn set_len(&mut self, new_size: u64) -> std::result::Result<(), FsError> {
        if self.read_only {
            return Err(FsError::PermissionDenied);
        }
        self.file.set_len(new_size).map_err(FsError::from)
    }

    fn unlink(&mut self) -> std::result::Result<(), FsError> {
        match &self.host_path {
            None => Ok(()),
            Some(_) if self.read_only => Err(FsError::PermissionDenied),
            Some(path) => std::fs::remove_file(path).map_err(FsError::from),
        }
    }

    fn poll_read_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(READY_HINT))
    }

    fn poll_write_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(READY_HINT))
    }
}

impl AsyncRead for SyncFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = self.file.read(buf.initialize_unfilled());
        Poll::Ready(read.map(|n| buf.advance(n)))
    }
}

impl AsyncWrite for SyncFile {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.file.write(buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.file.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for SyncFile {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        let result = self.file.seek(position);
        self.seek = Some(result);
        Ok(())
    }

    fn poll_complete(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(match self.seek.take() {
            Some(result) => result,
            None => self.file.stream_position(),
        })
    }
}
