//! Host files the guest reaches, opened by descriptor: a guest path is resolved and
//! opened in one step beneath a directory already open, never checked as a path and
//! opened again by name (which a symlink renamed in between turns into an escape).
//!
//! Resolution has container semantics: absolute symlinks resolve against the root and
//! `..` stops at it, as `openat2(RESOLVE_IN_ROOT)` does, which is used where the kernel
//! has it (Linux 5.6). Elsewhere the path is walked one component at a time with
//! `O_PATH | O_NOFOLLOW`, each symlink read through the descriptor that found it.
//! cap-std (the guest's own file access, at run time) refuses absolute symlinks outright,
//! which container images use routinely (`/bin/sh -> /bin/busybox`); this module is the
//! host's side, before the run: the entrypoint, the working directory, the preopens.
//!
//! It also owns which kinds of file a guest may open at all ([`guest_may_open`]): image
//! layers can carry device nodes, and only the OCI default devices are harmless.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// How many symlinks one resolution may follow, as the kernel's own limit.
const MAX_SYMLINKS: usize = 40;

/// The largest entrypoint wasmux reads: far above real modules (CPython's is 26 MB), and
/// a bound on what a hostile image (`/dev/zero` as its entrypoint) can make it read.
pub const MAX_MODULE_BYTES: u64 = 512 << 20;

/// The character devices a guest may open, by (major, minor): the OCI default devices
/// (`null`, `zero`, `full`, `random`, `urandom`) and the controlling `tty`.
const HARMLESS_DEVICES: [(u32, u32); 6] = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)];

/// An open host directory: the root a guest path resolves beneath, and what an engine
/// preopens. Cloning shares the descriptor; the directory stays the one that was opened
/// even if its path is renamed or replaced afterwards.
#[derive(Clone)]
pub struct HostDir {
    fd: Arc<OwnedFd>,
    /// Where it was on the host when opened, for messages only.
    shown: PathBuf,
}

impl fmt::Debug for HostDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HostDir({}, fd {})",
            self.shown.display(),
            self.fd.as_raw_fd()
        )
    }
}

impl PartialEq for HostDir {
    /// The same directory: device and inode, whatever path either was opened by.
    fn eq(&self, other: &Self) -> bool {
        match (rustix::fs::fstat(&*self.fd), rustix::fs::fstat(&*other.fd)) {
            (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
            _ => false,
        }
    }
}

impl Eq for HostDir {}

impl HostDir {
    /// Opens a directory the runtime chose (a rootfs, a bind mount's source, a scratch
    /// directory of its own): trusted, so opened by its path, symlinks and all.
    pub fn open(path: &Path) -> io::Result<HostDir> {
        let fd = rustix::fs::open(path, dir_flags(), Mode::empty())?;
        Ok(HostDir {
            fd: Arc::new(fd),
            shown: path.to_owned(),
        })
    }

    /// Opens the directory at `guest_path` beneath this one, with container semantics.
    pub fn open_dir(&self, guest_path: &Path) -> io::Result<HostDir> {
        let fd = open_in_root(self.as_fd(), guest_path, dir_flags())?;
        Ok(HostDir {
            fd: Arc::new(fd),
            shown: self.shown.join(relative(guest_path)),
        })
    }

    /// Where the directory was on the host when it was opened (for messages; never
    /// opened again by this name).
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// A duplicate of the descriptor as a `File`, for engines that take an open
    /// directory.
    pub fn try_clone_file(&self) -> io::Result<std::fs::File> {
        Ok(std::fs::File::from(self.fd.try_clone()?))
    }

    /// `/proc/self/fd/N`, for APIs that only take a path (wasmtime-wasi's preopens):
    /// the kernel's magic link leads to this very directory, not to whatever its name
    /// means now. Valid while `self` lives.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// The entries of this directory, through the descriptor.
    pub(crate) fn entry_names(&self) -> io::Result<Vec<OsString>> {
        let dir = rustix::fs::openat(self.as_fd(), ".", dir_flags(), Mode::empty())?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir)? {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(OsString::from_vec(name));
            }
        }
        Ok(names)
    }

    /// Reads the module at `guest_path` beneath this directory: it must be a regular
    /// file of at most [`MAX_MODULE_BYTES`]. A FIFO, a device or a socket is refused
    /// before it is opened for reading, so none can block or feed the read.
    pub fn read_module(&self, guest_path: &Path) -> io::Result<Vec<u8>> {
        let node = open_in_root(self.as_fd(), guest_path, OFlags::PATH)?;
        let stat = rustix::fs::fstat(&node)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(io::Error::other("it is a directory")),
            other => {
                return Err(io::Error::other(format!(
                    "it is a {}, not a regular file",
                    kind_name(other)
                )));
            }
        }
        let size = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
        if size > MAX_MODULE_BYTES {
            return Err(too_big());
        }
        let file = std::fs::File::from(reopen(&node, &stat, OFlags::RDONLY)?);
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(MAX_MODULE_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_MODULE_BYTES {
            return Err(too_big());
        }
        Ok(bytes)
    }
}

impl AsFd for HostDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn too_big() -> io::Error {
    io::Error::other(format!(
        "it is larger than {} MiB, wasmux's limit for a module",
        MAX_MODULE_BYTES >> 20
    ))
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// Whether a guest may open a file with this status: regular files, directories and
/// symlinks, and of devices only the harmless ones (null, zero, full, random, urandom,
/// tty). Block devices, other character devices (a raw disk, `/dev/kmsg`), FIFOs and
/// sockets are refused, wherever they are found.
pub fn guest_may_open(stat: &Stat) -> bool {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile | FileType::Directory | FileType::Symlink => true,
        FileType::CharacterDevice => {
            let device = (
                rustix::fs::major(stat.st_rdev),
                rustix::fs::minor(stat.st_rdev),
            );
            HARMLESS_DEVICES.contains(&device)
        }
        _ => false,
    }
}

/// The status of what `path` names beneath `dir` (`..` and symlinks may not leave it),
/// looked at through an `O_PATH` descriptor, which neither blocks on a FIFO nor wakes a
/// device. `None` when it does not exist or cannot be looked at: the open that follows
/// gives the guest its error. A guest's open is checked with this first, so that a node
/// it may not open is never opened at all, and then again on the descriptor it got.
pub fn peek_beneath(dir: BorrowedFd<'_>, path: &Path, follow_symlinks: bool) -> Option<Stat> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow_symlinks {
        flags |= OFlags::NOFOLLOW;
    }
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let node = rustix::fs::openat2(dir, path, flags, Mode::empty(), resolve).ok()?;
    rustix::fs::fstat(&node).ok()
}

/// Whether the open file `fd` is one a guest may use ([`guest_may_open`]).
pub fn guest_may_use(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|stat| guest_may_open(&stat))
}

/// What a file type is called in messages.
fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

/// Opens the node `node` (an `O_PATH` descriptor whose status is `stat`) again with
/// `flags`, through `/proc/self/fd`'s magic link, which leads to that very inode (and
/// is checked to). Where `/proc` is not mounted this is an error saying so.
fn reopen(node: &OwnedFd, stat: &Stat, flags: OFlags) -> io::Result<OwnedFd> {
    let link = format!("/proc/self/fd/{}", node.as_raw_fd());
    let fd = rustix::fs::open(
        link.as_str(),
        flags | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| io::Error::new(e.kind(), format!("reopening through {link}: {e}")))?;
    let now = rustix::fs::fstat(&fd)?;
    if (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino) {
        return Err(io::Error::other("the file changed while it was opened"));
    }
    Ok(fd)
}

/// Opens `path` beneath `root` with container semantics (see the module's docs).
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let relative = match relative(path) {
        p if p.as_os_str().is_empty() => Path::new("."),
        p => p,
    };
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    // A rename elsewhere during a resolution that crossed `..` makes openat2 answer
    // EAGAIN rather than risk a wrong answer: try again, then walk.
    for _ in 0..8 {
        match rustix::fs::openat2(
            root,
            relative,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            resolve,
        ) {
            Err(Errno::AGAIN) => continue,
            // No openat2 (Linux < 5.6), or a seccomp filter that does not know it.
            Err(Errno::NOSYS) | Err(Errno::PERM) => break,
            other => return other.map_err(Into::into),
        }
    }
    walk_in_root(root, relative, flags)
}

/// `path` without its root, so `..` and absolute symlinks are all that lead upwards.
fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// [`open_in_root`] without openat2: one component at a time, each opened `O_PATH |
/// O_NOFOLLOW` beneath the descriptor of the one before; a symlink's target is read
/// through the descriptor that found it and resolved in the root. The final node is
/// reopened from its own descriptor, so no name is looked up twice.
pub(crate) fn walk_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
) -> io::Result<OwnedFd> {
    // The directories below the root that the walk is in, innermost last.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut pending: VecDeque<OsString> = parts(path).collect();
    let mut links = 0;
    let flags = flags | OFlags::CLOEXEC;
    loop {
        let here = stack.last().map_or(root, |fd| fd.as_fd());
        let Some(part) = pending.pop_front() else {
            // The path named a directory the walk already holds (`""`, `a/..`).
            return Ok(rustix::fs::openat(here, ".", flags, Mode::empty())?);
        };
        if part == ".." {
            stack.pop();
            continue;
        }
        let node = rustix::fs::openat(
            here,
            part.as_os_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let stat = rustix::fs::fstat(&node)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::LOOP.into());
                }
                let target = rustix::fs::readlinkat(&node, "", Vec::new())?;
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.to_bytes()));
                if target.is_absolute() {
                    stack.clear();
                }
                for (i, p) in parts(&target).enumerate() {
                    pending.insert(i, p);
                }
            }
            _ if pending.is_empty() => {
                return if flags.contains(OFlags::PATH) {
                    Ok(node)
                } else {
                    reopen(&node, &stat, flags)
                };
            }
            FileType::Directory => stack.push(node),
            _ => return Err(Errno::NOTDIR.into()),
        }
    }
}

/// The path's components as names and `..`, dropping root and `.`.
fn parts(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_owned()),
        Component::ParentDir => Some("..".into()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

#[cfg(test)]
mod tests;
