//! The precompile cache: compiled native code of a module, stored once per module,
//! engine, engine configuration and host, so later starts skip the compiler.
//!
//! - content-addressed ([`cache_key`]): any change of module bytes, engine, version,
//!   configuration or CPU features is another entry;
//! - atomic: an entry is written to a temporary file in the same directory and renamed
//!   into place, so readers see a whole entry or none, and processes filling the same
//!   entry at once each rename a complete copy;
//! - private: the directory is created (or tightened) to mode 0700 and must belong to
//!   this user;
//! - verified: an entry is native code, so it is loaded only after its header, key and
//!   the BLAKE3 hash written with it match (hashed once per change of the file: its
//!   inode carries a mark of the size and time it was hashed at, `hash_mark`); entries
//!   are mapped, not copied; anything else is removed and recompiled. A write that
//!   fails (read-only or full disk) costs the cache, not the run;
//! - bounded ([`inventory`]): each entry carries its origin (engine, version,
//!   configuration, module hash); a hit marks the entry used (its modification time,
//!   at most once a minute); a write that takes the cache over its cap
//!   ([`MAX_SIZE_VAR`], [`DEFAULT_MAX_SIZE`]) evicts entries no engine of this build
//!   loads, then the least recently used. Eviction unlinks: a process that has an entry
//!   mapped keeps its pages, and a reader never sees a half-written entry.

mod entry;
mod hash_mark;
pub mod inventory;
mod key;
mod sealed;
mod setting;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use wasmux_core::{
    Artifact, ArtifactKey, ArtifactLookup, ArtifactOrigin, ArtifactStore, Descriptor,
};

pub use entry::{EntryInfo, Rejection};
pub use key::{cache_key, host_cpu_features};
pub use sealed::SealedEntry;
pub use setting::{
    CACHE_DIR_VAR, CACHE_SWITCH_VAR, CacheSetting, DEFAULT_MAX_SIZE, MAX_SIZE_VAR, max_size_from,
};

/// How stale a hit's last-use mark may get before the hit renews it: the resolution of
/// least-recently-used eviction, and why a hit rarely costs a write.
const USE_MARK_RESOLUTION: Duration = Duration::from_secs(60);

/// A directory of precompiled modules. Cheap to clone; safe to share between threads
/// and processes.
#[derive(Debug, Clone)]
pub struct PrecompileCache {
    dir: PathBuf,
    max_size: Option<u64>,
}

impl PrecompileCache {
    /// Uses `dir`, creating it with mode 0700. An existing directory must belong to
    /// this user; group or world access is removed. Capped at what [`MAX_SIZE_VAR`]
    /// says, else [`DEFAULT_MAX_SIZE`].
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        ensure_private_dir(&dir)?;
        let max_size = max_size_from(|name| std::env::var_os(name))?;
        Ok(PrecompileCache { dir, max_size })
    }

    /// With a cap of `bytes` (`None`: unbounded) instead of the environment's.
    pub fn with_max_size(mut self, bytes: Option<u64>) -> Self {
        self.max_size = bytes;
        self
    }

    /// The cap writes keep the cache under (`None`: unbounded).
    pub fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// The cache the environment asks for ([`CacheSetting::from_env`]), or `None` when
    /// it is switched off. A directory that cannot be used is an error, so the caller
    /// can warn and run uncached.
    pub fn from_env() -> io::Result<Option<Self>> {
        match CacheSetting::from_env() {
            CacheSetting::Off => Ok(None),
            CacheSetting::Dir(dir) => Self::open(dir).map(Some),
        }
    }

    /// The directory entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry for `key` lives (whether or not it exists).
    pub fn entry_path(&self, key: &ArtifactKey) -> PathBuf {
        self.dir.join(format!("{key}.bin"))
    }
}

impl fmt::Display for PrecompileCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dir.display())
    }
}

impl ArtifactStore for PrecompileCache {
    fn key(&self, engine: &Descriptor, fingerprint: &str, module: &[u8]) -> ArtifactKey {
        cache_key(engine, fingerprint, module)
    }

    /// Maps and verifies the entry for `key`. A rejected entry is removed.
    fn read(&self, key: &ArtifactKey) -> ArtifactLookup {
        let path = self.entry_path(key);
        let (file, map) = match map_regular_file(&path) {
            Ok(mapped) => mapped,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return ArtifactLookup::Missing,
            Err(e) => {
                return ArtifactLookup::Rejected(format!("cannot read {}: {e}", path.display()));
            }
        };
        // Before the check: a renewed use mark is a change the hash mark must see.
        mark_used(&file);
        match check_entry(key, &file, &map).and_then(|len| artifact_of(file, map, len)) {
            Ok(artifact) => ArtifactLookup::Found(artifact),
            Err(rejection) => {
                // Best effort: the fresh compile's rename replaces it anyway.
                let _ = fs::remove_file(&path);
                ArtifactLookup::Rejected(format!("{}: {rejection}", path.display()))
            }
        }
    }

    /// Stores `payload` as the entry for `key`, atomically, then keeps the cache under
    /// its cap (a failed eviction is logged: it costs the bound, not the entry).
    fn write(
        &self,
        key: &ArtifactKey,
        origin: &ArtifactOrigin<'_>,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut temp = tempfile::Builder::new()
            .prefix(inventory::PARTIAL_PREFIX)
            .suffix(".partial")
            .tempfile_in(&self.dir)?;
        temp.write_all(&entry::encode(key, &EntryInfo::of(origin), payload))?;
        temp.persist(self.entry_path(key)).map_err(|e| e.error)?;
        if let Some(max_size) = self.max_size
            && let Err(e) = self.keep_under(max_size, &[origin.engine])
        {
            tracing::warn!(cache = %self, error = %e, "precompile cache over its cap");
        }
        Ok(())
    }
}

/// Marks a hit's entry as used now (its modification time: the file's contents are
/// never changed, so a mapping of it stays valid), unless it was marked within
/// [`USE_MARK_RESOLUTION`]. Best effort: a cache that cannot be marked is still read.
fn mark_used(file: &File) {
    let now = SystemTime::now();
    let stale = file
        .metadata()
        .and_then(|m| m.modified())
        .map(|t| now.duration_since(t).unwrap_or_default() >= USE_MARK_RESOLUTION)
        .unwrap_or(false);
    if stale {
        let _ = file.set_modified(now);
    }
}

/// Checks the entry `file` (mapped as `map`) as `key`'s and returns its payload's
/// length: its trailer and key always, its hash unless the file's hash mark says the
/// hash matched before and the file has not changed since; a file whose hash matches
/// is marked.
fn check_entry(key: &ArtifactKey, file: &File, map: &[u8]) -> Result<usize, Rejection> {
    let stamp = hash_mark::Stamp::of(file);
    if stamp.as_ref().is_some_and(|stamp| stamp.is_marked_on(file)) {
        return entry::check_trailer(key, map).map(|trailer| trailer.payload_len as usize);
    }
    let payload_len = entry::verify(key, map)?;
    if let Some(stamp) = stamp {
        stamp.mark(file);
    }
    Ok(payload_len)
}

/// The artifact in `map` (the whole entry, `file` mapped), if it verifies as `key`'s.
fn verified_artifact(
    key: &ArtifactKey,
    file: File,
    map: memmap2::Mmap,
) -> Result<Artifact, Rejection> {
    let payload_len = entry::verify(key, &map)?;
    artifact_of(file, map, payload_len)
}

/// The artifact of an entry that verified as a key's: its payload hashed to what this
/// cache wrote with it under that key (now, or before and unchanged since, as its
/// `hash_mark` says).
fn artifact_of(file: File, map: memmap2::Mmap, payload_len: usize) -> Result<Artifact, Rejection> {
    // SAFETY: the payload is what this cache wrote under the key, after the engine's
    // compile_for_cache; entries are replaced by rename, never rewritten (a sealed
    // copy cannot be), so the file and its mapping stay as verified.
    #[allow(unsafe_code)]
    unsafe { Artifact::verified(file, map, payload_len) }.ok_or(Rejection::Truncated(payload_len))
}

/// Opens without following a symlink and maps only a regular file, so an entry
/// replaced by a link to a device or a FIFO cannot hang or flood the reader.
fn map_regular_file(path: &Path) -> io::Result<(File, memmap2::Mmap)> {
    let file = open_regular_file(path)?;
    // SAFETY: a mapping is only sound while no one changes the file. Entries live in a
    // directory private to this user and are only ever replaced by rename (a new
    // inode), never written in place; a truncation by someone else would fault the
    // reader (SIGBUS), which is the risk every mmap-based artifact cache takes.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok((file, map))
}

/// Opens `path` for reading if it is a regular file, without following a symlink.
fn open_regular_file(path: &Path) -> io::Result<File> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir),
        Err(e) => Err(e),
        Ok(metadata) if !metadata.is_dir() => Err(io::Error::other(format!(
            "{} is not a directory",
            dir.display()
        ))),
        Ok(metadata) if metadata.uid() != rustix::process::geteuid().as_raw() => {
            Err(io::Error::other(format!(
                "{} belongs to another user (uid {}); it must be this user's own",
                dir.display(),
                metadata.uid()
            )))
        }
        Ok(metadata) if metadata.mode() & 0o077 != 0 => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        }
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
