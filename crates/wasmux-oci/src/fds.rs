//! File descriptors across the create → container-process boundary: the handshake pipe
//! is passed by number (as runc passes `_LIBCONTAINER_INITPIPE`), and everything else
//! the caller leaked to `create` is closed, so the container holds only its stdio.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use rustix::io::FdFlags;

use crate::error::{OciError, Result};

/// The environment variable that carries the handshake pipe's fd number.
pub const SYNC_FD_VAR: &str = "_WASMUX_OCI_SYNC_FD";

/// Lets `fd` survive into a child process (clears close-on-exec) and returns its number.
pub fn inheritable(fd: &OwnedFd) -> Result<RawFd> {
    rustix::io::fcntl_setfd(fd, FdFlags::empty())
        .map_err(|e| OciError::io("passing the handshake pipe", e))?;
    Ok(fd.as_raw_fd())
}

/// Takes ownership of the handshake pipe named by [`SYNC_FD_VAR`], and closes every
/// other descriptor above stderr.
pub fn adopt_sync_fd_and_close_the_rest() -> Result<OwnedFd> {
    let number: RawFd = std::env::var(SYNC_FD_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&fd| fd > 2)
        .ok_or_else(|| {
            OciError::io(
                "init",
                std::io::Error::other("init is run by `wasmux-oci create`, not by hand"),
            )
        })?;
    let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| OciError::io("listing open descriptors", e))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    if !open.contains(&number) {
        return Err(OciError::io(
            "init",
            std::io::Error::other(format!("handshake fd {number} is not open")),
        ));
    }
    // The listing's own descriptor is closed by now, so every number still open is
    // either inherited or the handshake pipe.
    for fd in open.into_iter().filter(|&fd| fd > 2 && fd != number) {
        if rustix::io::fcntl_getfd(borrowed(fd)).is_ok() {
            // SAFETY: nothing in this process opened or owns `fd`: it was inherited
            // from the caller, and this runs before anything else opens descriptors.
            #[allow(unsafe_code)]
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    // SAFETY: `number` is open (checked above) and was passed to this process for it
    // alone by `create`; nothing else in the process refers to it.
    #[allow(unsafe_code)]
    let sync = unsafe { OwnedFd::from_raw_fd(number) };
    rustix::io::fcntl_setfd(&sync, FdFlags::CLOEXEC)
        .map_err(|e| OciError::io("adopting the handshake pipe", e))?;
    Ok(sync)
}

fn borrowed(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: only used for an fcntl(F_GETFD) probe, which is harmless on any number.
    #[allow(unsafe_code)]
    unsafe {
        std::os::fd::BorrowedFd::borrow_raw(fd)
    }
}
