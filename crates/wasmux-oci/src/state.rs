//! The state root and each container's directory in it: `<root>/<id>/`, private to
//! its owner, holding our record (`wasmux.json`) and libcontainer's own state
//! (`libcontainer/<id>/`: its record, the notify socket the init waits on until
//! `start`), so that `delete` removes everything even after the process was SIGKILLed.
//!
//! A delegated (Linux) container's directory is the delegate's (runc keeps its own
//! `state.json` there) and has no record of ours: that is how later commands on its
//! ID know to hand over.

use std::collections::HashMap;
use std::fs::{DirBuilder, File};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::ContainerState;
use serde::{Deserialize, Serialize};

use crate::error::{OciError, Result};
use crate::process::ProcessIdentity;

/// Our record in a container directory.
const RECORD: &str = "wasmux.json";
/// libcontainer's own root inside the container's directory.
const LIBCONTAINER: &str = "libcontainer";
/// The creation lock ([`ContainerDir::hold_creation_lock`]).
const CREATING: &str = "creating.lock";

/// The state root (`--root`).
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

/// What an ID names under the root.
pub enum Lookup {
    /// A container of ours, with its record.
    Ours(ContainerDir, Record),
    /// A directory some other runtime (the delegate) keeps.
    Delegated,
    /// Nothing.
    Missing,
}

impl Root {
    /// The root at `dir`, created private (0700) if missing. A root owned by another
    /// user, or writable by others, is refused (as runc does): whoever can write there
    /// could forge a record that makes `kill` signal any process and `delete` remove
    /// any directory.
    pub fn open(dir: &Path) -> Result<Self> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| OciError::io(format!("creating state root {}", dir.display()), e))?;
        let stat = rustix::fs::stat(dir)
            .map_err(|e| OciError::io(format!("state root {}", dir.display()), e))?;
        let me = rustix::process::geteuid().as_raw();
        let refuse = |why: String| {
            OciError::io(
                format!("state root {}", dir.display()),
                std::io::Error::other(why),
            )
        };
        if stat.st_uid != me {
            return Err(refuse(format!(
                "it is owned by uid {}, not by this user ({me})",
                stat.st_uid
            )));
        }
        if stat.st_mode & 0o022 != 0 {
            return Err(refuse(format!(
                "it is writable by others (mode {:o})",
                stat.st_mode & 0o7777
            )));
        }
        Ok(Root {
            dir: dir.to_owned(),
        })
    }

    /// The directory of a (validated) container ID.
    pub fn container(&self, id: &str) -> ContainerDir {
        ContainerDir {
            id: id.to_owned(),
            path: self.dir.join(id),
        }
    }

    /// Finds the container `id`.
    pub fn lookup(&self, id: &str) -> Result<Lookup> {
        let dir = self.container(id);
        // Not followed: a container's directory is a real directory of the root's.
        match std::fs::symlink_metadata(&dir.path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(OciError::io(
                    format!("container directory {}", dir.path.display()),
                    std::io::Error::other("it is a symlink, which wasmux-oci never makes"),
                ));
            }
            Ok(meta) if meta.is_dir() => {}
            _ => return Ok(Lookup::Missing),
        }
        Ok(match dir.read_record()? {
            Some(record) => Lookup::Ours(dir, record),
            None => Lookup::Delegated,
        })
    }
}

/// One container's private directory.
#[derive(Debug)]
pub struct ContainerDir {
    id: String,
    path: PathBuf,
}

/// What `create` recorded about a container of ours.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The container process, once it reported ready.
    pub process: Option<ProcessIdentity>,
    /// When `create` began (RFC 3339).
    pub created: String,
    /// The bundle's annotations.
    pub annotations: HashMap<String, String>,
    /// `start` has released the container process.
    #[serde(default)]
    pub started: bool,
}

impl ContainerDir {
    /// The container's ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Creates the directory (0700), failing if the ID is taken: the one step that
    /// decides a race between two `create`s of the same ID.
    pub fn claim(&self) -> Result<()> {
        DirBuilder::new()
            .mode(0o700)
            .create(&self.path)
            .map_err(|e| match e.kind() {
                ErrorKind::AlreadyExists => OciError::Exists(self.id.clone()),
                _ => OciError::io(format!("creating {}", self.path.display()), e),
            })?;
        DirBuilder::new()
            .mode(0o700)
            .create(self.libcontainer_root())
            .map_err(|e| OciError::io("creating libcontainer's root", e))
    }

    /// A lock `create` holds (shared) from before libcontainer forks the container's
    /// processes, which inherit it: the init lets go once `start` released it. While
    /// it is held by any process, a `create` is or was under way and its processes
    /// may be orphans: [`creators`](Self::creators) names them.
    pub fn hold_creation_lock(&self) -> Result<File> {
        let path = self.path.join(CREATING);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| OciError::io(format!("creating {}", path.display()), e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared)
            .map_err(|e| OciError::io("locking the creation lock", std::io::Error::from(e)))?;
        Ok(file)
    }

    /// The processes other than this one that hold the creation lock (a `create`
    /// still running, or what it forked: libcontainer's intermediate process and the
    /// init before `start`), found by the open file they share; empty when no one
    /// holds it. A live holder is what a `create` killed half-way leaves behind.
    pub fn creators(&self) -> Vec<i32> {
        let path = self.path.join(CREATING);
        let Ok(file) = File::open(&path) else {
            return Vec::new();
        };
        let held =
            rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err();
        if !held {
            return Vec::new();
        }
        let me = std::process::id() as i32;
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        procs
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != me)
            .filter(|pid| {
                std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                    fds.filter_map(Result::ok)
                        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == path))
                })
            })
            .collect()
    }

    /// The root libcontainer keeps this container's state under.
    pub fn libcontainer_root(&self) -> PathBuf {
        self.path.join(LIBCONTAINER)
    }

    /// libcontainer's directory of this container.
    pub fn libcontainer_dir(&self) -> PathBuf {
        self.libcontainer_root().join(&self.id)
    }

    /// Writes the record atomically: readers see the old one or the new one, never half.
    pub fn write_record(&self, record: &Record) -> Result<()> {
        let json = serde_json::to_vec(record)
            .map_err(|e| OciError::io("encoding the state record", std::io::Error::other(e)))?;
        write_atomically(&self.path.join(RECORD), &json, 0o600)
    }

    /// Reads the record; `None` if this directory is not ours.
    pub fn read_record(&self) -> Result<Option<Record>> {
        let path = self.path.join(RECORD);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(OciError::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| OciError::CorruptState {
                path,
                message: e.to_string(),
            })
    }

    /// The runtime-spec status: creating until the container process exists, created
    /// until `start` told libcontainer's init to go on, running after, stopped once the
    /// process has exited.
    pub fn status(&self, record: &Record) -> ContainerState {
        match record.process {
            None => ContainerState::Creating,
            Some(p) if !p.is_alive() => ContainerState::Stopped,
            Some(_) if !record.started => ContainerState::Created,
            Some(_) => ContainerState::Running,
        }
    }

    /// Removes the directory and everything in it (the scratch directories too).
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(OciError::io(format!("removing {}", self.path.display()), e))
            }
            _ => Ok(()),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed
/// into place, so a crash leaves the old file or the new one and never a torn one.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let context = || format!("writing {}", path.display());
    let mut file = tempfile::Builder::new()
        .prefix(".wasmux-")
        .tempfile_in(dir)
        .map_err(|e| OciError::io(context(), e))?;
    file.write_all(bytes)
        .and_then(|()| {
            file.as_file()
                .set_permissions(PermissionsExt::from_mode(mode))
        })
        .and_then(|()| File::sync_all(file.as_file()))
        .map_err(|e| OciError::io(context(), e))?;
    file.persist(path)
        .map_err(|e| OciError::io(context(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            bundle: "/b".into(),
            process: None,
            created: "2026-01-01T00:00:00Z".into(),
            annotations: HashMap::new(),
            started: false,
        }
    }

    #[test]
    fn claim_is_exclusive_and_private_and_remove_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(&tmp.path().join("root")).unwrap();
        let dir = root.container("c1");
        dir.claim().unwrap();
        let mode = std::fs::metadata(&dir.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(matches!(
            root.container("c1").claim(),
            Err(OciError::Exists(_))
        ));
        dir.write_record(&record()).unwrap();
        assert!(matches!(root.lookup("c1").unwrap(), Lookup::Ours(..)));
        dir.remove().unwrap();
        assert!(matches!(root.lookup("c1").unwrap(), Lookup::Missing));
        assert_eq!(
            std::fs::read_dir(tmp.path().join("root")).unwrap().count(),
            0
        );
    }

    /// The audit's attack: a root others can write to, and in it a symlinked ID with a
    /// forged record. Both are refused.
    #[test]
    fn a_root_others_can_write_and_a_symlinked_id_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Root::open(&shared).unwrap_err();
        assert!(err.to_string().contains("writable by others"), "{err}");

        let root = Root::open(&tmp.path().join("root")).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(
            elsewhere.join(RECORD),
            serde_json::to_vec(&record()).unwrap(),
        )
        .unwrap();
        std::os::unix::fs::symlink(&elsewhere, tmp.path().join("root/forged")).unwrap();
        let err = root
            .lookup("forged")
            .err()
            .expect("a symlinked ID is refused");
        assert!(err.to_string().contains("symlink"), "{err}");
    }

    #[test]
    fn a_directory_without_our_record_is_the_delegates() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(tmp.path()).unwrap();
        std::fs::create_dir(tmp.path().join("native")).unwrap();
        std::fs::write(tmp.path().join("native/state.json"), "{}").unwrap();
        assert!(matches!(root.lookup("native").unwrap(), Lookup::Delegated));
    }

    #[test]
    fn a_corrupt_record_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(tmp.path()).unwrap();
        let dir = root.container("c");
        dir.claim().unwrap();
        std::fs::write(dir.path.join(RECORD), b"{\"bundle\": ").unwrap();
        let err = root.lookup("c").err().unwrap();
        assert!(err.to_string().contains("corrupt state file"), "{err}");
    }

    #[test]
    fn status_follows_the_process_and_start() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Root::open(tmp.path()).unwrap().container("c");
        dir.claim().unwrap();
        let mut rec = record();
        assert_eq!(dir.status(&rec), ContainerState::Creating);
        rec.process = ProcessIdentity::of(std::process::id() as i32);
        assert_eq!(dir.status(&rec), ContainerState::Created);
        rec.started = true;
        assert_eq!(dir.status(&rec), ContainerState::Running);
        rec.process.as_mut().unwrap().start_ticks += 1;
        assert_eq!(dir.status(&rec), ContainerState::Stopped);
    }

    #[test]
    fn atomic_writes_replace_whole_files_with_the_given_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pid");
        write_atomically(&path, b"123", 0o644).unwrap();
        write_atomically(&path, b"45", 0o644).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"45");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
