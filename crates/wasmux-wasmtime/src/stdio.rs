//! The guest's stdio for wasmtime-wasi: files and pipes whose reads and writes give
//! way to a kill. wasmtime-wasi's own `OutputFile` blocks in `write_all` on a full
//! pipe, where no epoch check reaches the guest; these streams go through wasmux-core's
//! [`GuestFile`], so a deadline ends a guest stuck on its stdio too.

use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};
use wasmux_core::RunControl;
use wasmux_core::stdio_wait::GuestFile;

/// Most bytes one guest read asks the host for.
const MAX_READ: usize = 64 * 1024;

/// One stdio stream of one run: wasmtime-wasi's stream traits over a [`GuestFile`].
#[derive(Clone)]
pub(crate) struct GuestStream {
    file: Arc<GuestFile>,
    control: RunControl,
}

impl GuestStream {
    pub(crate) fn new(file: File, control: &RunControl) -> Self {
        GuestStream {
            file: Arc::new(GuestFile::new(file, control)),
            control: control.clone(),
        }
    }
}

/// A failed write or read ends the guest's call as wasmtime-wasi's own streams do; a
/// kill becomes a trap, which the run then reports as the kill.
fn stream_error(e: io::Error, control: &RunControl) -> StreamError {
    if control.killed().is_some() {
        StreamError::Trap(wasmtime::format_err!("{e}"))
    } else {
        StreamError::LastOperationFailed(wasmtime::format_err!(e))
    }
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        std::io::IsTerminal::is_terminal(self.file.file())
    }
}

#[async_trait::async_trait]
impl Pollable for GuestStream {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.file
            .write_all(&bytes)
            .map_err(|e| stream_error(e, &self.control))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_READ)
    }
}

impl InputStream for GuestStream {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let mut buf = BytesMut::zeroed(size.min(MAX_READ));
        let n = self
            .file
            .read_some(&mut buf)
            .map_err(|e| stream_error(e, &self.control))?;
        if n == 0 {
            return Err(StreamError::Closed);
        }
        buf.truncate(n);
        Ok(buf.freeze())
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl StdinStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.file.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for GuestStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(
            self.file
                .read_some(buf.initialize_unfilled())
                .map(|n| buf.advance(n)),
        )
    }
}
