//! The guest's file system for wasmer-wasix: exactly the spec's WASI preopens, each
//! backed by its host directory, and nothing else (no in-memory `/bin`, `/etc`, `/tmp`
//! of wasmer's own).
//!
//! wasmer-wasix resolves every preopen through one backing file system. [`GuestFs`] is
//! that file system: the preopen for guest `/` is its root (so `/` lists the rootfs
//! exactly, and absolute symlink targets resolve in it); every other preopen lives under
//! a hidden prefix the guest only reaches through that preopen. Each preopen is a
//! [`HostDir`], which refuses mutations itself when read-only: wasmer-wasix lets `..`
//! walk from one preopen into another while keeping the first one's rights, so WASI
//! rights alone would not keep it read-only.

use std::future::Future;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use wasmer_wasix::virtual_fs::{
    self, DirEntry, FileOpener, FileSystem, FsError, Metadata, OpenOptions, OpenOptionsConfig,
    ReadDir, VirtualFile,
};
use wasmer_wasix::{WasiEnvBuilder, WasiStateCreationError};
use wasmux_engine_api::rootpath::resolve_in_root;
use wasmux_engine_api::{Error, Preopen, Result};

use crate::file::SyncFile;

type DynFs = Arc<dyn FileSystem + Send + Sync>;
type FsResult<T> = std::result::Result<T, FsError>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where preopens other than `/` live in the backing file system.
const HIDDEN: &str = ".wasmux-preopen";

/// Adds the preopens to `builder`, backed by one [`GuestFs`] made for them.
pub(crate) fn install_preopens(
    builder: &mut WasiEnvBuilder,
    preopens: &[Preopen],
    handle: tokio::runtime::Handle,
) -> Result<()> {
    let mut guest_fs = GuestFs::default();
    for preopen in preopens {
        let fs: DynFs = Arc::new(
            HostDir::new(&preopen.host, preopen.read_only, handle.clone())
                .map_err(|e| preopen_error(preopen, e.to_string()))?,
        );
        let writable = !preopen.read_only;
        let added = if preopen.guest == "/" {
            guest_fs.root = Some(fs);
            builder.add_preopen_build(|dir| {
                dir.directory("/")
                    .read(true)
                    .write(writable)
                    .create(writable)
            })
        } else {
            let backing = format!("/{HIDDEN}/{}", guest_fs.others.len());
            guest_fs.others.push(fs);
            builder.add_preopen_build(|dir| {
                dir.directory(&backing)
                    .alias(&preopen.guest)
                    .read(true)
                    .write(writable)
                    .create(writable)
            })
        };
        added.map_err(|e: WasiStateCreationError| preopen_error(preopen, e.to_string()))?;
    }
    builder.set_fs(Arc::new(guest_fs) as DynFs);
    Ok(())
}

fn preopen_error(preopen: &Preopen, message: String) -> Error {
    Error::io(
        format!(
            "opening {} for the guest's {}",
            preopen.host.display(),
            preopen.guest
        ),
        std::io::Error::other(message),
    )
}

/// Routes backing paths to the preopens' file systems.
#[derive(Debug, Default)]
pub(crate) struct GuestFs {
    root: Option<DynFs>,
    others: Vec<DynFs>,
}

impl GuestFs {
    /// The file system behind `path`, the path inside it, and the prefix it sits under.
    fn route(&self, path: &Path) -> FsResult<(&DynFs, PathBuf, PathBuf)> {
        let mut parts = path
            .components()
            .filter(|c| !matches!(c, Component::RootDir | Component::CurDir));
        let first = parts.next();
        if first == Some(Component::Normal(HIDDEN.as_ref())) {
            let index = parts
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .and_then(|i| i.parse::<usize>().ok())
                .ok_or(FsError::EntryNotFound)?;
            let fs = self.others.get(index).ok_or(FsError::EntryNotFound)?;
            let prefix = Path::new("/").join(HIDDEN).join(index.to_string());
            return Ok((fs, Path::new("/").join(parts.collect::<PathBuf>()), prefix));
        }
        let fs = self.root.as_ref().ok_or(FsError::EntryNotFound)?;
        let inner = Path::new("/").join(first.into_iter().chain(parts).collect::<PathBuf>());
        Ok((fs, inner, PathBuf::from("/")))
    }
}

impl FileSystem for GuestFs {
    fn readlink(&self, path: &Path) -> FsResult<PathBuf> {
        let (fs, inner, _) = self.route(path)?;
        fs.readlink(&inner)
    }

    fn read_dir(&self, path: &Path) -> FsResult<ReadDir> {
        let (fs, inner, prefix) = self.route(path)?;
        let entries = fs.read_dir(&inner)?;
        let rebased = entries
            .map(|entry| {
                entry.map(|e| DirEntry {
                    path: prefix.join(e.path.strip_prefix("/").unwrap_or(&e.path)),
                    metadata: e.metadata,
                })
            })
            .collect::<FsResult<Vec<_>>>()?;
        Ok(ReadDir::new(rebased))
    }

    fn create_dir(&self, path: &Path) -> FsResult<()> {
        let (fs, inner, _) = self.route(path)?;
        fs.create_dir(&inner)
    }

    fn create_symlink(&self, source: &Path, target: &Path) -> FsResult<()> {
        let (fs, inner, _) = self.route(target)?;
        fs.create_symlink(source, &inner)
    }

    fn hard_link(&self, source: &Path, target: &Path) -> FsResult<()> {
        let (from_fs, from, _) = self.route(source)?;
        let (to_fs, to, _) = self.route(target)?;
        if !Arc::ptr_eq(from_fs, to_fs) {
            return Err(FsError::InvalidInput);
        }
        from_fs.hard_link(&from, &to)
    }

    fn remove_dir(&self, path: &Path) -> FsResult<()> {
        let (fs, inner, _) = self.route(path)?;
        fs.remove_dir(&inner)
    }

    fn rename<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, FsResult<()>> {
        Box::pin(async move {
            let (from_fs, from, _) = self.route(from)?;
            let (to_fs, to, _) = self.route(to)?;
            // Across preopens is across devices: refused, as a host would (EXDEV).
            if !Arc::ptr_eq(from_fs, to_fs) {
                return Err(FsError::InvalidInput);
            }
            from_fs.rename(&from, &to).await
        })
    }

    fn metadata(&self, path: &Path) -> FsResult<Metadata> {
        let (fs, inner, _) = self.route(path)?;
        fs.metadata(&inner)
    }

    fn symlink_metadata(&self, path: &Path) -> FsResult<Metadata> {
        let (fs, inner, _) = self.route(path)?;
        fs.symlink_metadata(&inner)
    }

    fn remove_file(&self, path: &Path) -> FsResult<()> {
        let (fs, inner, _) = self.route(path)?;
        fs.remove_file(&inner)
    }

    fn new_open_options(&self) -> OpenOptions<'_> {
        OpenOptions::new(self)
    }
}

impl FileOpener for GuestFs {
    fn open(
        &self,
        path: &Path,
        conf: &OpenOptionsConfig,
    ) -> FsResult<Box<dyn VirtualFile + Send + Sync + 'static>> {
        let (fs, inner, _) = self.route(path)?;
        fs.new_open_options().options(conf.clone()).open(inner)
    }
}

/// A host directory as a wasmer-wasix file system. Files open as [`SyncFile`]s; when
/// `read_only`, every mutation is refused with `PermissionDenied`, whatever WASI rights
/// the caller holds (also unlinking through an open handle).
#[derive(Debug)]
pub(crate) struct HostDir {
    /// Directory listings, metadata and directory changes.
    inner: virtual_fs::host_fs::FileSystem,
    /// The directory itself, canonical.
    root: PathBuf,
    read_only: bool,
}

impl HostDir {
    pub(crate) fn new(
        root: &Path,
        read_only: bool,
        handle: tokio::runtime::Handle,
    ) -> std::io::Result<Self> {
        let root = root.canonicalize()?;
        let inner = virtual_fs::host_fs::FileSystem::new(handle, &root)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(HostDir {
            inner,
            root,
            read_only,
        })
    }

    fn writable(&self) -> FsResult<()> {
        if self.read_only {
            Err(FsError::PermissionDenied)
        } else {
            Ok(())
        }
    }

    /// The host path of `path`, symlinks resolved inside the directory. A name that does
    /// not resolve (a file to create, or a symlink whose target is missing in the
    /// directory) is looked up through its parent, and opened without following it.
    fn host_path(&self, path: &Path) -> FsResult<PathBuf> {
        let relative = path.strip_prefix("/").unwrap_or(path);
        match resolve_in_root(&self.root, relative) {
            Ok(host) => Ok(host),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let name = relative.file_name().ok_or(FsError::EntryNotFound)?;
                let parent = relative.parent().unwrap_or(Path::new(""));
                Ok(resolve_in_root(&self.root, parent)?.join(name))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl FileSystem for HostDir {
    fn readlink(&self, path: &Path) -> FsResult<PathBuf> {
        self.inner.readlink(path)
    }

    fn read_dir(&self, path: &Path) -> FsResult<ReadDir> {
        self.inner.read_dir(path)
    }

    fn create_dir(&self, path: &Path) -> FsResult<()> {
        self.writable()?;
        self.inner.create_dir(path)
    }

    fn create_symlink(&self, source: &Path, target: &Path) -> FsResult<()> {
        self.writable()?;
        self.inner.create_symlink(source, target)
    }

    fn hard_link(&self, source: &Path, target: &Path) -> FsResult<()> {
        self.writable()?;
        self.inner.hard_link(source, target)
    }

    fn remove_dir(&self, path: &Path) -> FsResult<()> {
        self.writable()?;
        self.inner.remove_dir(path)
    }

    fn rename<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, FsResult<()>> {
        Box::pin(async move {
            self.writable()?;
            self.inner.rename(from, to).await
        })
    }

    fn metadata(&self, path: &Path) -> FsResult<Metadata> {
        self.inner.metadata(path)
    }

    fn symlink_metadata(&self, path: &Path) -> FsResult<Metadata> {
        self.inner.symlink_metadata(path)
    }

    fn remove_file(&self, path: &Path) -> FsResult<()> {
        self.writable()?;
        self.inner.remove_file(path)
    }

    fn new_open_options(&self) -> OpenOptions<'_> {
        OpenOptions::new(self)
    }
}

impl FileOpener for HostDir {
    fn open(
        &self,
        path: &Path,
        conf: &OpenOptionsConfig,
    ) -> FsResult<Box<dyn VirtualFile + Send + Sync + 'static>> {
        if conf.write() || conf.append() || conf.truncate() || conf.create() || conf.create_new() {
            self.writable()?;
        }
        let host = self.host_path(path)?;
        // std refuses append together with truncate; truncating first makes append moot.
        let append = conf.append() && !conf.truncate();
        // `host` has no symlinks left, unless it is a new name whose last component
        // turned into one since: never follow that out of the directory.
        let file = std::fs::OpenOptions::new()
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .read(conf.read())
            .write(conf.write() || append)
            .append(append)
            .truncate(conf.truncate())
            .create(conf.create())
            .create_new(conf.create_new())
            .open(&host)?;
        Ok(Box::new(SyncFile::opened(file, host, self.read_only)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_dir(dir: &Path, read_only: bool) -> HostDir {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        HostDir::new(dir, read_only, rt.handle().clone()).unwrap()
    }

    fn host(dir: &Path) -> DynFs {
        Arc::new(host_dir(dir, false))
    }

    #[test]
    fn read_only_refuses_every_mutation_but_reads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"data").unwrap();
        let fs = host_dir(dir.path(), true);
        let f = Path::new("/f");
        assert!(fs.metadata(f).is_ok());
        assert!(fs.new_open_options().read(true).open(f).is_ok());
        for denied in [
            fs.new_open_options().write(true).open(f).err(),
            fs.new_open_options().append(true).open(f).err(),
            fs.new_open_options()
                .read(true)
                .truncate(true)
                .open(f)
                .err(),
            fs.new_open_options().create(true).open("/g").err(),
        ] {
            assert_eq!(denied, Some(FsError::PermissionDenied));
        }
        assert_eq!(fs.remove_file(f), Err(FsError::PermissionDenied));
        assert_eq!(
            fs.create_dir(Path::new("/d")),
            Err(FsError::PermissionDenied)
        );
        let mut handle = fs.new_open_options().read(true).open(f).unwrap();
        assert_eq!(handle.unlink(), Err(FsError::PermissionDenied));
        assert_eq!(handle.set_len(0), Err(FsError::PermissionDenied));
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"data");
    }

    #[test]
    fn opens_follow_symlinks_inside_the_directory_only() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"host").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), b"inside").unwrap();
        let link = outside.path().join("secret");
        std::os::unix::fs::symlink(&link, dir.path().join("abs")).unwrap();
        let fs = host_dir(dir.path(), false);
        // The absolute target resolves inside the directory (as in a chroot), where it
        // does not exist: refused, never followed to the host file.
        assert!(fs.new_open_options().read(true).open("/abs").is_err());
        std::os::unix::fs::symlink("/secret", dir.path().join("abs-inside")).unwrap();
        let mut file = fs
            .new_open_options()
            .read(true)
            .open("/abs-inside")
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut SyncReader(&mut file), &mut text).unwrap();
        assert_eq!(text, "inside");
        let created = fs.new_open_options().write(true).create(true).open("/new");
        assert!(created.is_ok());
        assert!(dir.path().join("new").exists());
    }

    /// Reads a wasmer-wasix file synchronously (a `SyncFile` completes every poll at once).
    struct SyncReader<'a>(&'a mut Box<dyn VirtualFile + Send + Sync>);

    impl std::io::Read for SyncReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let mut read_buf = virtual_fs::ReadBuf::new(buf);
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            match Pin::new(&mut **self.0).poll_read(&mut cx, &mut read_buf) {
                std::task::Poll::Ready(Ok(())) => Ok(read_buf.filled().len()),
                std::task::Poll::Ready(Err(e)) => Err(e),
                std::task::Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
            }
        }
    }

    #[test]
    fn routes_root_and_hidden_preopens_and_lists_the_root_exactly() {
        let root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("in-root"), b"r").unwrap();
        std::fs::write(other.path().join("in-other"), b"o").unwrap();
        let fs = GuestFs {
            root: Some(host(root.path())),
            others: vec![host(other.path())],
        };
        let names = |p: &str| -> Vec<String> {
            fs.read_dir(Path::new(p))
                .unwrap()
                .map(|e| e.unwrap().path.display().to_string())
                .collect()
        };
        assert_eq!(names("/"), ["/in-root"]);
        assert_eq!(names("/.wasmux-preopen/0"), ["/.wasmux-preopen/0/in-other"]);
        assert!(
            fs.metadata(Path::new("/.wasmux-preopen/0/in-other"))
                .is_ok()
        );
        assert_eq!(
            fs.metadata(Path::new("/.wasmux-preopen/1/x")).err(),
            Some(FsError::EntryNotFound)
        );
    }
}
