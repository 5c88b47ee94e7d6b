//! `--console-socket`: a new pty whose slave becomes the container's stdio and
//! controlling terminal, and whose master goes to the caller (conmon, containerd's
//! shim) over the socket as SCM_RIGHTS, the way runc hands it over.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

use crate::error::{OciError, Result};

/// Gives this process (already a session leader) a new pty as its controlling terminal
/// and stdio, and sends the master to `socket`. `size` is the spec's
/// `process.consoleSize` (rows, columns).
pub fn attach(socket: &Path, size: Option<(u16, u16)>) -> Result<()> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: rustix::io::Errno| OciError::io(format!("console: {what}"), e)
    };
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(err("opening /dev/ptmx"))?;
    rustix::pty::grantpt(&master).map_err(err("grantpt"))?;
    rustix::pty::unlockpt(&master).map_err(err("unlockpt"))?;
    let name = rustix::pty::ptsname(&master, Vec::new()).map_err(err("ptsname"))?;
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)
        .map_err(err("opening the pty slave"))?;
    if let Some((rows, cols)) = size {
        let winsize = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, winsize).map_err(err("setting the size"))?;
    }
    send_fd(socket, name.as_bytes(), &master)?;
    rustix::process::ioctl_tiocsctty(&slave).map_err(err("making it the controlling terminal"))?;
    rustix::stdio::dup2_stdin(&slave).map_err(err("stdin"))?;
    rustix::stdio::dup2_stdout(&slave).map_err(err("stdout"))?;
    rustix::stdio::dup2_stderr(&slave).map_err(err("stderr"))?;
    Ok(())
}

/// Sends `fd` with `payload` (the pty's name, as runc sends) over a new connection to
/// the Unix socket at `path`.
fn send_fd(path: &Path, payload: &[u8], fd: impl AsFd) -> Result<()> {
    let context = || format!("console: sending the pty to {}", path.display());
    let stream = UnixStream::connect(path).map_err(|e| OciError::io(context(), e))?;
    let fds = [fd.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        &stream,
        &[IoSlice::new(payload)],
        &mut control,
        SendFlags::empty(),
    )
    .map_err(|e| OciError::io(context(), e))?;
    Ok(())
}
