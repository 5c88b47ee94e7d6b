//! Which files a guest may open: an image layer can carry device nodes (unpackers
//! running as root create them), and a shared volume FIFOs and sockets. Only regular
//! files, directories and the harmless default devices may be opened
//! ([`wasmux_core::hostfs::guest_may_open`]); anything else is `EACCES`, as a
//! container's device cgroup answers.
//!
//! Each open is looked at twice: before, through an `O_PATH` descriptor (so a refused
//! node is never opened: opening a FIFO blocks, opening some devices acts), and after,
//! on the descriptor the open returned (so a node swapped in between is still refused).
//! Every directory opened beneath is wrapped the same way, so the rule follows the guest
//! down the tree. The wrapper also gives the open flags the meaning wasmtime's WASI
//! gives them (see `open_file`), where wasi-common (through cap-std) differs.

use std::any::Any;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use wasi_common::dir::{OpenResult, ReaddirCursor, ReaddirEntity, WasiDir};
use wasi_common::file::{FdFlags, Filestat, OFlags};
use wasi_common::snapshots::preview_1::types::Errno;
use wasi_common::sync::Dir;
use wasi_common::{Error, SystemTimeSpec};
use wasmux_core::hostfs::{guest_may_open, guest_may_use, peek_beneath};

/// A directory beneath which only the files a guest may use can be opened.
pub(crate) struct NodeCheckedDir {
    /// The directory itself, to look at what a path names before opening it.
    dir: Dir,
    /// wasi-common's directory over the same descriptor, which does the work.
    inner: wasi_common::sync::dir::Dir,
}

impl NodeCheckedDir {
    pub(crate) fn new(dir: Dir) -> std::io::Result<Self> {
        let inner = wasi_common::sync::dir::Dir::from_cap_std(dir.try_clone()?);
        Ok(NodeCheckedDir { dir, inner })
    }
}

fn refused<T>() -> Result<T, Error> {
    Err(Errno::Acces.into())
}

#[async_trait::async_trait]
impl WasiDir for NodeCheckedDir {
    /// wasi-common's own directory: its `rename` and `hard_link` downcast their
    /// destination to it.
    fn as_any(&self) -> &dyn Any {
        self.inner.as_any()
    }

    async fn open_file(
        &self,
        symlink_follow: bool,
        path: &str,
        oflags: OFlags,
        read: bool,
        write: bool,
        fdflags: FdFlags,
    ) -> Result<OpenResult, Error> {
        let before = peek_beneath(self.dir.as_fd(), Path::new(path), symlink_follow);
        if before.as_ref().is_some_and(|stat| !guest_may_open(stat)) {
            return refused();
        }
        // `O_APPEND` is a property of the descriptor, set after the open, never a
        // reason to open for writing, as wasmtime's WASI (the reference) has it: cap-std,
        // as std's `OpenOptions`, would refuse `O_TRUNC | O_APPEND` (wasi-libc's
        // `open(p, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND)`) and open a directory with
        // `O_APPEND` for writing (EISDIR). A directory ignores it.
        let append = fdflags.contains(FdFlags::APPEND);
        let opened = self
            .inner
            .open_file(
                symlink_follow,
                path,
                oflags,
                read,
                write,
                fdflags - FdFlags::APPEND,
            )
            .await?;
        match opened {
            OpenResult::File(mut file) => match file.pollable() {
                Some(fd) if guest_may_use(fd) => {
                    if append {
                        let flags = file.get_fdflags().await?;
                        file.set_fdflags(flags | FdFlags::APPEND).await?;
                    }
                    Ok(OpenResult::File(file))
                }
                _ => refused(),
            },
            // Opened again here to keep the rule on what lies beneath; cap-std keeps
            // the second open inside this directory too.
            OpenResult::Dir(_) => {
                let dir = self.dir.open_dir(path)?;
                Ok(OpenResult::Dir(Box::new(NodeCheckedDir::new(dir)?)))
            }
        }
    }

    async fn create_dir(&self, path: &str) -> Result<(), Error> {
        self.inner.create_dir(path).await
    }

    async fn readdir(
        &self,
        cursor: ReaddirCursor,
    ) -> Result<Box<dyn Iterator<Item = Result<ReaddirEntity, Error>> + Send>, Error> {
        self.inner.readdir(cursor).await
    }

    async fn symlink(&self, old_path: &str, new_path: &str) -> Result<(), Error> {
        self.inner.symlink(old_path, new_path).await
    }

    async fn remove_dir(&self, path: &str) -> Result<(), Error> {
        self.inner.remove_dir(path).await
    }

    async fn unlink_file(&self, path: &str) -> Result<(), Error> {
        self.inner.unlink_file(path).await
    }

    async fn read_link(&self, path: &str) -> Result<PathBuf, Error> {
        self.inner.read_link(path).await
    }

    async fn get_filestat(&self) -> Result<Filestat, Error> {
        self.inner.get_filestat().await
    }

    async fn get_path_filestat(&self, path: &str, follow: bool) -> Result<Filestat, Error> {
        self.inner.get_path_filestat(path, follow).await
    }

    async fn rename(&self, src: &str, dest_dir: &dyn WasiDir, dest: &str) -> Result<(), Error> {
        self.inner.rename(src, dest_dir, dest).await
    }

    async fn hard_link(
        &self,
        src: &str,
        target_dir: &dyn WasiDir,
        target: &str,
    ) -> Result<(), Error> {
        self.inner.hard_link(src, target_dir, target).await
    }

    async fn set_times(
        &self,
        path: &str,
        atime: Option<SystemTimeSpec>,
        mtime: Option<SystemTimeSpec>,
        follow_symlinks: bool,
    ) -> Result<(), Error> {
        self.inner
            .set_times(path, atime, mtime, follow_symlinks)
            .await
    }
}
