//! Read-only preopens. wasi-common 46 has no read-only mode: a preopen hands out
//! whatever the host directory allows, and `O_CREAT` even turns a read-only open into a
//! writable one. These wrappers refuse every mutation with `EPERM` (what wasmtime
//! answers for a read-only preopen) before it reaches the host, whatever the host file
//! modes say, and wrap every file and directory opened beneath so the refusal follows
//! the guest down the tree.

use std::any::Any;
use std::io::{IoSlice, IoSliceMut, SeekFrom};
use std::path::PathBuf;

use wasi_common::dir::{OpenResult, ReaddirCursor, ReaddirEntity, WasiDir};
use wasi_common::file::{Advice, FdFlags, FileType, Filestat, OFlags, WasiFile};
use wasi_common::snapshots::preview_1::types::Errno;
use wasi_common::sync::Dir;
use wasi_common::{Error, SystemTimeSpec};

/// A preopened host directory, read-only when asked, beneath which only the files a
/// guest may use can be opened (`nodes`).
pub(crate) fn preopen(dir: Dir, read_only: bool) -> std::io::Result<Box<dyn WasiDir>> {
    let dir: Box<dyn WasiDir> = Box::new(crate::nodes::NodeCheckedDir::new(dir)?);
    Ok(if read_only {
        Box::new(ReadOnlyDir(dir))
    } else {
        dir
    })
}

fn refused<T>() -> Result<T, Error> {
    Err(Errno::Perm.into())
}

/// A directory whose tree the guest may read but not change.
struct ReadOnlyDir(Box<dyn WasiDir>);

#[async_trait::async_trait]
impl WasiDir for ReadOnlyDir {
    /// The wrapper itself, not the inner directory: wasi-common's `rename` and
    /// `hard_link` downcast their destination to its own directory type, so a move or
    /// link *into* a read-only tree from a writable one fails there too.
    fn as_any(&self) -> &dyn Any {
        self
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
        let mutating = OFlags::CREATE | OFlags::EXCLUSIVE | OFlags::TRUNCATE;
        if write || oflags.intersects(mutating) || fdflags.contains(FdFlags::APPEND) {
            return refused();
        }
        let opened = self
            .0
            .open_file(symlink_follow, path, oflags, read, false, fdflags)
            .await?;
        Ok(match opened {
            OpenResult::File(file) => OpenResult::File(Box::new(ReadOnlyFile(file))),
            OpenResult::Dir(dir) => OpenResult::Dir(Box::new(ReadOnlyDir(dir))),
        })
    }

    async fn readdir(
        &self,
        cursor: ReaddirCursor,
    ) -> Result<Box<dyn Iterator<Item = Result<ReaddirEntity, Error>> + Send>, Error> {
        self.0.readdir(cursor).await
    }

    async fn read_link(&self, path: &str) -> Result<PathBuf, Error> {
        self.0.read_link(path).await
    }

    async fn get_filestat(&self) -> Result<Filestat, Error> {
        self.0.get_filestat().await
    }

    async fn get_path_filestat(&self, path: &str, follow: bool) -> Result<Filestat, Error> {
        self.0.get_path_filestat(path, follow).await
    }

    async fn create_dir(&self, _path: &str) -> Result<(), Error> {
        refused()
    }

    async fn symlink(&self, _old_path: &str, _new_path: &str) -> Result<(), Error> {
        refused()
    }

    async fn remove_dir(&self, _path: &str) -> Result<(), Error> {
        refused()
    }

    async fn unlink_file(&self, _path: &str) -> Result<(), Error> {
        refused()
    }

    async fn rename(&self, _: &str, _: &dyn WasiDir, _: &str) -> Result<(), Error> {
        refused()
    }

    /// Refused as well: a hard link elsewhere would make the file writable there.
    async fn hard_link(&self, _: &str, _: &dyn WasiDir, _: &str) -> Result<(), Error> {
        refused()
    }

    async fn set_times(
        &self,
        _path: &str,
        _atime: Option<SystemTimeSpec>,
        _mtime: Option<SystemTimeSpec>,
        _follow_symlinks: bool,
    ) -> Result<(), Error> {
        refused()
    }
}

/// A file opened beneath a read-only preopen: readable, never changed.
struct ReadOnlyFile(Box<dyn WasiFile>);

#[async_trait::async_trait]
impl WasiFile for ReadOnlyFile {
    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn get_filetype(&self) -> Result<FileType, Error> {
        self.0.get_filetype().await
    }

    fn pollable(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.0.pollable()
    }

    fn isatty(&self) -> bool {
        self.0.isatty()
    }

    async fn get_fdflags(&self) -> Result<FdFlags, Error> {
        self.0.get_fdflags().await
    }

    async fn set_fdflags(&mut self, flags: FdFlags) -> Result<(), Error> {
        if flags.contains(FdFlags::APPEND) {
            return refused();
        }
        self.0.set_fdflags(flags).await
    }

    async fn get_filestat(&self) -> Result<Filestat, Error> {
        self.0.get_filestat().await
    }

    async fn advise(&self, offset: u64, len: u64, advice: Advice) -> Result<(), Error> {
        self.0.advise(offset, len, advice).await
    }

    async fn read_vectored<'a>(&self, bufs: &mut [IoSliceMut<'a>]) -> Result<u64, Error> {
        self.0.read_vectored(bufs).await
    }

    async fn read_vectored_at<'a>(
        &self,
        bufs: &mut [IoSliceMut<'a>],
        offset: u64,
    ) -> Result<u64, Error> {
        self.0.read_vectored_at(bufs, offset).await
    }

    async fn seek(&self, pos: SeekFrom) -> Result<u64, Error> {
        self.0.seek(pos).await
    }

    async fn peek(&self, buf: &mut [u8]) -> Result<u64, Error> {
        self.0.peek(buf).await
    }

    fn num_ready_bytes(&self) -> Result<u64, Error> {
        self.0.num_ready_bytes()
    }

    async fn readable(&self) -> Result<(), Error> {
        self.0.readable().await
    }

    async fn set_filestat_size(&self, _size: u64) -> Result<(), Error> {
        refused()
    }

    async fn set_times(
        &self,
        _atime: Option<SystemTimeSpec>,
        _mtime: Option<SystemTimeSpec>,
    ) -> Result<(), Error> {
        refused()
    }

    async fn write_vectored<'a>(&self, _bufs: &[IoSlice<'a>]) -> Result<u64, Error> {
        refused()
    }

    async fn write_vectored_at<'a>(
        &self,
        _bufs: &[IoSlice<'a>],
        _offset: u64,
    ) -> Result<u64, Error> {
        refused()
    }

    async fn writable(&self) -> Result<(), Error> {
        refused()
    }
}
