//! `RunSpec`: everything an engine needs to run one workload, as plain engine-neutral data.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::hostfs::HostDir;
use crate::wasm::WasmBinary;

/// A host directory the guest sees at a guest path. The unit of the guest's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// Directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it: an absolute path, or `.` for the working directory.
    pub guest: String,
    /// The guest may read but never create, write, rename or delete under it.
    pub read_only: bool,
}

/// Where one standard stream of the guest goes.
#[derive(Debug, Default, Clone)]
pub enum StdioStream {
    /// The host process's own stream.
    #[default]
    Inherit,
    /// Nothing: reads see end of file, writes are discarded.
    Null,
    /// Any open file, pipe or socket the embedder hands over. Shared, so a spec can be
    /// cloned as a template; each run gets its own duplicate of the descriptor.
    File(Arc<File>),
}

impl From<File> for StdioStream {
    fn from(file: File) -> Self {
        StdioStream::File(Arc::new(file))
    }
}

impl From<OwnedFd> for StdioStream {
    fn from(fd: OwnedFd) -> Self {
        StdioStream::from(File::from(fd))
    }
}

impl StdioStream {
    /// A second handle to the same stream, so the host can report on it after the
    /// engine has consumed the first.
    pub fn try_clone(&self) -> Result<Self> {
        Ok(match self {
            StdioStream::Inherit => StdioStream::Inherit,
            StdioStream::Null => StdioStream::Null,
            StdioStream::File(f) => StdioStream::from(
                f.try_clone()
                    .map_err(|e| Error::io("duplicating a stdio handle", e))?,
            ),
        })
    }

    /// Resolves `Null` to an open `/dev/null`, for engines that only take files.
    pub fn into_file_or_inherit(self, write: bool) -> Result<Option<File>> {
        match self {
            StdioStream::Inherit => Ok(None),
            StdioStream::File(f) => Arc::try_unwrap(f)
                .or_else(|shared| shared.try_clone())
                .map(Some)
                .map_err(|e| Error::io("duplicating a stdio handle", e)),
            StdioStream::Null => std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/dev/null")
                .map(Some)
                .map_err(|e| Error::io("opening /dev/null", e)),
        }
    }
}

/// The guest's three standard streams.
#[derive(Debug, Default, Clone)]
pub struct Stdio {
    /// Guest fd 0.
    pub stdin: StdioStream,
    /// Guest fd 1.
    pub stdout: StdioStream,
    /// Guest fd 2; trap messages are written here too.
    pub stderr: StdioStream,
}

/// Resource limits enforced inside the engine, not by the host kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Cap on the guest's total linear memory, in bytes.
    pub memory_bytes: Option<u64>,
    /// Wall-clock time after which the guest is killed with SIGKILL.
    pub timeout: Option<Duration>,
    /// CPU time the guest may use (all threads of the process running it), after
    /// which it is killed with SIGXCPU (exit 152). Runs only: a served component's
    /// requests share one process, and each has `timeout` as its deadline instead.
    pub cpu_time: Option<Duration>,
}

/// One workload, fully decided: an engine only translates this into its own calls.
///
/// Cloning makes a template's copy for another run: the clones share the stdio files
/// and the scratch directories (removed when the last clone is dropped).
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The module or component to run.
    pub wasm: WasmBinary,
    /// Exported function to call instead of `_start` (core modules only).
    pub entry: Option<String>,
    /// argv, verbatim, `argv[0]` included.
    pub args: Vec<String>,
    /// Exactly the guest's environment; nothing of the host is added.
    pub env: Vec<(String, String)>,
    /// The guest's working directory (absolute).
    pub cwd: String,
    /// The guest's mount table, in order: later entries shadow earlier ones.
    pub mounts: Vec<Preopen>,
    /// Standard streams.
    pub stdio: Stdio,
    /// Memory and time limits.
    pub limits: Limits,
    /// The guest may use the network of the process that runs it: its container's
    /// network namespace, for a runtime (`wasi:sockets`: TCP, UDP, name lookup, for
    /// components; preview1 has no sockets to give). Off unless the caller grants it:
    /// outside a container that network is the host's.
    pub network: bool,
    /// What the host paths in `mounts` depend on (a runtime's scratch directories),
    /// held as long as the spec or any clone of it.
    pub keep_alive: KeepAlive,
}

impl RunSpec {
    /// A spec with argv `[origin]`, no environment, no file system, inherited stdio.
    pub fn new(wasm: WasmBinary) -> Self {
        RunSpec {
            args: vec![wasm.origin.clone()],
            wasm,
            entry: None,
            env: Vec::new(),
            cwd: "/".into(),
            mounts: Vec::new(),
            stdio: Stdio::default(),
            limits: Limits::default(),
            network: false,
            keep_alive: KeepAlive::default(),
        }
    }

    /// Opens the directory behind a guest path through the mount table, resolving
    /// symlinks inside the mount it lands in by descriptor. Returns it and its mount's
    /// `read_only`.
    pub fn open_guest_dir(&self, guest: &str) -> Result<(HostDir, bool)> {
        let (mount, rest) = mount_of(&self.mounts, guest)?;
        let dir =
            open_mount(mount)?
                .open_dir(Path::new(rest))
                .map_err(|e| match e.raw_os_error() {
                    Some(code) if code == rustix::io::Errno::NOTDIR.raw_os_error() => {
                        Error::InvalidBundle(format!("{guest} is not a directory in the guest"))
                    }
                    _ => Error::io(format!("opening the guest's {guest}"), e),
                })?;
        Ok((dir, mount.read_only))
    }

    /// The WASI preopens that realise this spec's mounts and working directory, each an
    /// open directory: engines hand the guest these descriptors and never open a path
    /// again. Every engine uses this, so the file-system layout is decided once.
    ///
    /// WASI preview1 has no working directory: wasi-libc starts every program at `/` and
    /// resolves relative paths through the preopen named `.` (or `/`; both are its empty
    /// prefix). With `cwd` = `/` the mounts are the preopens. With another `cwd`, the
    /// working directory becomes the `.` preopen, and the rootfs is offered through its
    /// top-level directories (`/etc`, `/usr`, ...) so absolute paths still resolve; the
    /// price is that listing `/` itself, or a file directly in `/`, goes to the working
    /// directory instead (docs/oci-to-wasi.md, "Known limits").
    pub fn wasi_preopens(&self) -> Result<Vec<GuestDir>> {
        if self.mounts.len() > MAX_MOUNTS {
            return Err(Error::InvalidBundle(format!(
                "{} mounts: wasmux gives a guest at most {MAX_MOUNTS}",
                self.mounts.len()
            )));
        }
        let mut preopens = Vec::new();
        let cwd_is_root = self.cwd.trim_end_matches('/').is_empty();
        for mount in shadowed(self.mounts.iter().collect(), |m| &m.guest) {
            if !cwd_is_root && mount.guest.trim_end_matches('/').is_empty() {
                preopens.extend(top_level_dirs(mount)?);
            } else {
                preopens.push(GuestDir {
                    dir: open_mount(mount)?,
                    guest: mount.guest.clone(),
                    read_only: mount.read_only,
                });
            }
        }
        if !cwd_is_root {
            let (dir, read_only) = self.open_guest_dir(&self.cwd)?;
            preopens.push(GuestDir {
                dir,
                guest: ".".into(),
                read_only,
            });
        }
        Ok(shadowed(preopens, |p| &p.guest))
    }
}

/// Host resources a spec's paths depend on, such as the temporary directories behind a
/// bundle's `tmpfs` mounts: released when the last spec holding them is dropped.
#[derive(Clone, Default)]
pub struct KeepAlive(Vec<Arc<dyn Send + Sync>>);

impl KeepAlive {
    /// Holds `resource` for as long as the spec lives.
    pub fn hold(&mut self, resource: impl Send + Sync + 'static) {
        self.0.push(Arc::new(resource));
    }
}

impl std::fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeepAlive({} resources)", self.0.len())
    }
}

/// Most mounts one guest may have: each is a descriptor held open for the run and a
/// preopen wasi-libc walks at start-up.
pub const MAX_MOUNTS: usize = 1024;

/// One preopen as an engine hands it to the guest: an open host directory, never a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestDir {
    /// The directory, opened and resolved before the run.
    pub dir: HostDir,
    /// Where the guest sees it: an absolute path, or `.` for the working directory.
    pub guest: String,
    /// The guest may read but never create, write, rename or delete under it.
    pub read_only: bool,
}

/// Each guest path once, the later entry winning as a later mount shadows an earlier
/// one, in the order of the winners. (Two preopens of one name would leave the choice
/// to the guest's libc, which takes the first.) Linear, for tables of many mounts.
fn shadowed<T>(entries: Vec<T>, guest: impl Fn(&T) -> &String) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<T> = Vec::with_capacity(entries.len());
    for entry in entries.into_iter().rev() {
        if seen.insert(guest(&entry).trim_end_matches('/').to_owned()) {
            kept.push(entry);
        }
    }
    kept.reverse();
    kept
}

/// A mount's source, opened: chosen by the runtime (a rootfs, a bind mount's source,
/// a scratch directory), so opened by its path.
fn open_mount(mount: &Preopen) -> Result<HostDir> {
    HostDir::open(&mount.host).map_err(|e| {
        Error::io(
            format!(
                "opening {} for the guest's {}",
                mount.host.display(),
                mount.guest
            ),
            e,
        )
    })
}

/// The mount a guest path lives in (longest mount point wins, later mounts shadow
/// earlier ones) and the rest of the path below it.
fn mount_of<'m, 'g>(mounts: &'m [Preopen], guest: &'g str) -> Result<(&'m Preopen, &'g str)> {
    // `max_by_key` keeps the last of equal keys: the later mount of one path wins.
    let mount = mounts
        .iter()
        .filter(|m| guest_prefix(&m.guest, guest).is_some())
        .max_by_key(|m| m.guest.trim_end_matches('/').len())
        .ok_or_else(|| {
            Error::InvalidBundle(format!("{guest} is not inside any mount of the guest"))
        })?;
    Ok((mount, guest_prefix(&mount.guest, guest).unwrap_or_default()))
}

/// The open source of the mount a guest path lives in, and the rest of the path below it.
pub fn open_mount_of<'g>(mounts: &[Preopen], guest: &'g str) -> Result<(HostDir, &'g str)> {
    let (mount, rest) = mount_of(mounts, guest)?;
    Ok((open_mount(mount)?, rest))
}

/// The top-level directories of a root mount, each as its own preopen. Symlinked
/// entries are resolved inside the root, never on the host.
fn top_level_dirs(root: &Preopen) -> Result<Vec<GuestDir>> {
    let dir = open_mount(root)?;
    let names = dir
        .entry_names()
        .map_err(|e| Error::io(format!("listing {}", root.host.display()), e))?;
    let mut dirs = Vec::new();
    for name in names {
        let Some(name_str) = name.to_str() else {
            continue;
        };
        // Not a directory (or a link to none): not offered.
        let Ok(host) = dir.open_dir(Path::new(&name)) else {
            continue;
        };
        dirs.push(GuestDir {
            dir: host,
            guest: format!("/{name_str}"),
            read_only: root.read_only,
        });
    }
    dirs.sort_by(|a, b| a.guest.cmp(&b.guest));
    Ok(dirs)
}

/// If `mount` (a guest mount point) contains `path`, the part of `path` below it.
fn guest_prefix<'a>(mount: &str, path: &'a str) -> Option<&'a str> {
    let mount = mount.trim_end_matches('/');
    let rest = path.strip_prefix(mount)?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest.trim_start_matches('/'))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::WasmKind;

    fn spec_with(mounts: Vec<Preopen>, cwd: &str) -> RunSpec {
        let mut spec = RunSpec::new(WasmBinary {
            bytes: Vec::new().into(),
            kind: WasmKind::CoreModule,
            origin: "/m.wasm".into(),
        });
        spec.mounts = mounts;
        spec.cwd = cwd.into();
        spec
    }

    fn mount(host: &Path, guest: &str, read_only: bool) -> Preopen {
        Preopen {
            host: host.to_owned(),
            guest: guest.into(),
            read_only,
        }
    }

    /// Each preopen as (guest path, the directory it opened, read-only).
    fn view(preopens: &[GuestDir]) -> Vec<(String, HostDir, bool)> {
        preopens
            .iter()
            .map(|p| (p.guest.clone(), p.dir.clone(), p.read_only))
            .collect()
    }

    fn dir(path: &Path) -> HostDir {
        HostDir::open(path).unwrap()
    }

    #[test]
    fn a_later_mount_shadows_an_earlier_one_and_a_rootfs_dir() {
        let root = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("data")).unwrap();
        let mounts = vec![
            mount(root.path(), "/", false),
            mount(root.path(), "/data", false),
            mount(data.path(), "/data/", true),
        ];
        let at_root = spec_with(mounts.clone(), "/").wasi_preopens().unwrap();
        assert_eq!(
            view(&at_root),
            [
                ("/".into(), dir(root.path()), false),
                ("/data/".into(), dir(data.path()), true)
            ]
        );
        let in_data = spec_with(mounts.clone(), "/data").wasi_preopens().unwrap();
        let data_preopens: Vec<_> = in_data
            .iter()
            .filter(|p| p.guest.starts_with("/data"))
            .collect();
        assert_eq!(data_preopens.len(), 1);
        assert_eq!(data_preopens[0].dir, dir(data.path()));
        assert_eq!(in_data.last().unwrap().dir, dir(data.path()));
    }

    #[test]
    fn root_cwd_keeps_the_mount_table() {
        let root = tempfile::tempdir().unwrap();
        let mounts = vec![mount(root.path(), "/", true)];
        assert_eq!(
            view(&spec_with(mounts, "/").wasi_preopens().unwrap()),
            [("/".into(), dir(root.path()), true)]
        );
    }

    #[test]
    fn other_cwd_becomes_dot_and_root_splits_into_top_level_dirs() {
        let root = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("work/sub")).unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("file"), b"").unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("link")).unwrap();
        let spec = spec_with(
            vec![
                mount(root.path(), "/", true),
                mount(data.path(), "/data", false),
            ],
            "/work/sub",
        );
        let preopens = spec.wasi_preopens().unwrap();
        let names: Vec<_> = preopens.iter().map(|p| p.guest.as_str()).collect();
        assert_eq!(names, ["/etc", "/link", "/work", "/data", "."]);
        // The symlink resolved inside the root, not to the host's /etc.
        assert_eq!(preopens[1].dir, dir(&root.path().join("etc")));
        assert_eq!(preopens[4].dir, dir(&root.path().join("work/sub")));
        assert!(preopens[4].read_only);
    }

    #[test]
    fn cwd_inside_a_mount_uses_that_mount() {
        let root = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(data.path().join("in")).unwrap();
        let spec = spec_with(
            vec![
                mount(root.path(), "/", true),
                mount(data.path(), "/data", false),
            ],
            "/data/in",
        );
        let dot = spec.wasi_preopens().unwrap().pop().unwrap();
        assert_eq!(
            (dot.dir, dot.read_only),
            (dir(&data.path().join("in")), false)
        );
    }

    #[test]
    fn missing_or_file_cwd_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("file"), b"").unwrap();
        for cwd in ["/nope", "/file"] {
            let spec = spec_with(vec![mount(root.path(), "/", false)], cwd);
            assert!(spec.wasi_preopens().is_err(), "{cwd}");
        }
    }

    /// Shadowing is linear and the table is capped: 20,000 mounts were 20 s of
    /// quadratic work before.
    #[test]
    fn many_mounts_are_refused_and_shadowing_keeps_the_last() {
        let root = tempfile::tempdir().unwrap();
        let many = vec![mount(root.path(), "/m", false); MAX_MOUNTS + 1];
        let err = spec_with(many, "/").wasi_preopens().unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        let entries: Vec<(String, u32)> =
            (0..10_000).map(|i| (format!("/d{}", i % 10), i)).collect();
        let kept = shadowed(entries, |e| &e.0);
        assert_eq!(kept.len(), 10);
        assert!(kept.iter().all(|(_, i)| *i >= 9_990));
    }

    #[test]
    fn guest_prefix_matches_whole_components() {
        assert_eq!(guest_prefix("/", "/a/b"), Some("a/b"));
        assert_eq!(guest_prefix("/data", "/data/x"), Some("x"));
        assert_eq!(guest_prefix("/data", "/data"), Some(""));
        assert_eq!(guest_prefix("/data", "/database"), None);
    }
}
