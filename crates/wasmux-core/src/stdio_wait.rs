//! Stdio that never outlives a kill. A guest blocked in a host `write` to a full pipe
//! (or a `read` of a silent one) is out of reach of every in-guest check (epoch,
//! fuel); backends read and write a guest's stdio through [`GuestFile`] instead, which
//! waits in short polls that watch the run's [`RunControl`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::control::RunControl;

/// How often a waiting run looks at its control: the longest a kill waits for it.
const CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// The largest write a pipe accepts whole once it polls writable, without blocking.
const PIPE_ATOMIC_WRITE: usize = 4096;

/// Which way the guest wants to move bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// The guest reads (stdin).
    Read,
    /// The guest writes (stdout, stderr).
    Write,
}

/// Waits until `fd` is ready for `direction`. `Ok(false)` means the run was killed
/// first: the caller should end the guest instead of touching the fd.
fn wait_ready(fd: impl AsFd, direction: Direction, control: &RunControl) -> io::Result<bool> {
    let flags = match direction {
        Direction::Read => PollFlags::IN,
        Direction::Write => PollFlags::OUT,
    };
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: CHECK_INTERVAL.as_nanos() as i64,
    };
    loop {
        if control.killed().is_some() {
            return Ok(false);
        }
        let mut fds = [PollFd::new(&fd, flags)];
        match poll(&mut fds, Some(&timeout)) {
            // Readable, writable, or hung up / in error: the next read or write says
            // which, without blocking.
            Ok(n) if n > 0 => return Ok(true),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// One of a guest's stdio files, read and written so that a kill of its run is never
/// stuck behind it: what every backend's WASI stdio is built on.
#[derive(Debug)]
pub struct GuestFile {
    file: File,
    control: RunControl,
    /// Pipes, sockets and terminals can block; regular files and /dev/null cannot.
    may_block: bool,
}

impl GuestFile {
    /// Wraps `file` for a run under `control`.
    pub fn new(file: File, control: &RunControl) -> Self {
        GuestFile {
            may_block: may_block(&file),
            file,
            control: control.clone(),
        }
    }

    /// The file itself, for metadata (terminal or not, file type).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether reads and writes may have to wait (pipes, sockets, terminals).
    pub fn may_block(&self) -> bool {
        self.may_block
    }

    /// Waits until the file is ready, or fails if the run was killed meanwhile.
    fn ready(&self, direction: Direction) -> io::Result<()> {
        if self.may_block && !wait_ready(&self.file, direction, &self.control)? {
            return Err(io::Error::other("the run was killed"));
        }
        Ok(())
    }

    /// Writes a prefix of `bytes` and returns its length: where a write could block,
    /// only once the file is writable and at most what a pipe then takes whole.
    pub fn write_some(&self, bytes: &[u8]) -> io::Result<usize> {
        if !self.may_block {
            return (&self.file).write(bytes);
        }
        self.ready(Direction::Write)?;
        (&self.file).write(&bytes[..bytes.len().min(PIPE_ATOMIC_WRITE)])
    }

    /// Writes all of `bytes` through [`write_some`](Self::write_some).
    pub fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.write_some(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads into `buf` once the file is readable.
    pub fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.ready(Direction::Read)?;
        (&self.file).read(buf)
    }
}

/// Whether waiting is needed at all: regular files and `/dev/null` never block.
fn may_block(file: &std::fs::File) -> bool {
    file.metadata()
        .map(|m| !m.is_file() && !is_dev_null(&m))
        .unwrap_or(true)
}

fn is_dev_null(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    metadata.file_type().is_char_device() && metadata.rdev() == rustix::fs::makedev(1, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    #[test]
    fn a_kill_ends_the_wait_on_a_full_pipe() {
        let (_reader, mut writer) = std::io::pipe().unwrap();
        rustix::io::ioctl_fionbio(&writer, true).unwrap();
        while writer.write(&[0; 4096]).is_ok() {}
        rustix::io::ioctl_fionbio(&writer, false).unwrap();
        let control = RunControl::new();
        let killer = control.clone();
        let started = Instant::now();
        let kill = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            killer.kill(9);
        });
        assert!(!wait_ready(&writer, Direction::Write, &control).unwrap());
        kill.join().unwrap();
        // Liveness only: a generous bound on how long the kill takes to be seen.
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn ready_streams_do_not_wait() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let control = RunControl::new();
        assert!(wait_ready(&writer, Direction::Write, &control).unwrap());
        writer.write_all(b"x").unwrap();
        assert!(wait_ready(&reader, Direction::Read, &control).unwrap());
        let null = std::fs::File::create("/dev/null").unwrap();
        assert!(!may_block(&null));
        assert!(!may_block(&tempfile::tempfile().unwrap()));
        assert!(may_block(&std::fs::File::from(std::os::fd::OwnedFd::from(
            reader
        ))));
    }
}
