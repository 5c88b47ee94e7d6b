//! Scratch directories: the fresh, private host directories behind a bundle's `tmpfs`
//! mounts and the guest's `/dev`, removed when the last spec holding them is dropped.

use std::path::PathBuf;

use tempfile::TempDir;
use wasmux_core::{Error, Preopen, Result, RunSpec};

/// The scratch directories of one spec being mapped.
pub(crate) struct Scratch {
    /// Where they are made; the system's temp directory when unset.
    root: Option<PathBuf>,
    dirs: Vec<TempDir>,
}

impl Scratch {
    /// Scratch directories to be made inside `root` (or the system's temp directory).
    pub(crate) fn new(root: Option<PathBuf>) -> Self {
        Scratch {
            root,
            dirs: Vec::new(),
        }
    }

    /// Adds a fresh empty host directory at `guest` to `spec`'s mounts (how `tmpfs`
    /// mounts are provided).
    pub(crate) fn add(&mut self, spec: &mut RunSpec, guest: &str, read_only: bool) -> Result<()> {
        let mut builder = tempfile::Builder::new();
        // Only this process's user may look in: it holds the guest's own data.
        builder
            .prefix("wasmux-tmpfs-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let dir = match &self.root {
            Some(root) => builder.tempdir_in(root),
            None => builder.tempdir(),
        }
        .map_err(|e| Error::io("creating a scratch directory for a tmpfs mount", e))?;
        spec.mounts.push(Preopen {
            host: dir.path().to_owned(),
            guest: guest.to_owned(),
            read_only,
        });
        self.dirs.push(dir);
        Ok(())
    }

    /// Gives the guest the OCI default devices at `/dev`: in the run's own scratch `/dev`
    /// (a tmpfs mount there, or a new one), unless the bundle bind-mounts its own `/dev`.
    /// Where device nodes cannot be created (no CAP_MKNOD), `/dev` stays empty, with a
    /// warning, and the run goes on.
    pub(crate) fn provide_default_devices(&mut self, spec: &mut RunSpec) -> Result<()> {
        let is_scratch = |m: &Preopen| self.dirs.iter().any(|d| d.path() == m.host);
        let dev = match spec.mounts.iter().rposition(|m| m.guest == "/dev") {
            Some(i) if is_scratch(&spec.mounts[i]) => i,
            Some(_) => return Ok(()),
            None => {
                self.add(spec, "/dev", false)?;
                spec.mounts.len() - 1
            }
        };
        let dir = &mut spec.mounts[dev];
        dir.read_only = false;
        if let Err(e) = crate::devices::populate(&dir.host) {
            tracing::warn!(error = %e, "cannot create the default devices; the guest's /dev is empty");
        }
        Ok(())
    }

    /// Hands the directories to `spec`, which keeps them as long as it (or a clone) lives.
    pub(crate) fn hold_in(self, spec: &mut RunSpec) {
        if !self.dirs.is_empty() {
            spec.keep_alive.hold(self.dirs);
        }
    }
}
