//! The cache as a whole: what it holds, which entries are still sound, and what to
//! drop to keep it bounded (`wasmux cache list|verify|prune`, and every write).
//!
//! Entries are removed by unlinking, never rewritten: a process that has one mapped (a
//! running container's engine) keeps its pages, and a concurrent reader finds the whole
//! entry or none. Last use is an entry's modification time, which a hit renews
//! ([`PrecompileCache`]'s read); eviction order is: entries no engine of this build
//! loads (another wasmux, or another version of a known engine), then the least
//! recently used.

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use wasmux_core::{ArtifactKey, Descriptor};

use crate::entry::{self, EntryInfo, Rejection, TRAILER_LEN, Trailer};
use crate::{PrecompileCache, map_regular_file, open_regular_file};

/// How a writer's temporary file starts; one older than [`ABANDONED_AFTER`] was left
/// by a writer that died, and is removed by a prune.
pub(crate) const PARTIAL_PREFIX: &str = ".tmp-";
const ABANDONED_AFTER: Duration = Duration::from_secs(3600);
/// A write's eviction takes the cache a tenth under its cap (this divides the cap), so
/// that the next few writes do not each evict again.
const LOW_WATER_MARGIN: u64 = 10;

/// One entry, as the cache's listing sees it (without reading its payload).
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its file.
    pub path: PathBuf,
    /// Its key, from its file name.
    pub key: String,
    /// Bytes on disk.
    pub size: u64,
    /// When it was last used (or written).
    pub last_use: SystemTime,
    /// What it says it was compiled from, or why it cannot say.
    pub info: Result<EntryInfo, Rejection>,
}

/// What a prune is to remove.
#[derive(Debug, Clone, Default)]
pub struct PrunePolicy {
    /// Remove the least recently used until the cache holds at most this many bytes.
    pub max_size: Option<u64>,
    /// Remove entries unused for longer than this.
    pub older_than: Option<Duration>,
    /// The engines of this build: an entry of one of their names but another version
    /// (or of another wasmux) is never loaded again, and goes first.
    pub engines: Vec<(String, String)>,
}

impl PrunePolicy {
    /// A policy knowing `engines` as this build's.
    pub fn for_engines<'a>(engines: impl IntoIterator<Item = &'a Descriptor>) -> Self {
        PrunePolicy {
            engines: engines
                .into_iter()
                .map(|d| (d.name.to_owned(), d.version.to_owned()))
                .collect(),
            ..Self::default()
        }
    }

    /// Why `entry` is removed regardless of the size cap, if it is.
    fn unconditional(&self, entry: &Listed, now: SystemTime) -> Option<&'static str> {
        let info = match &entry.info {
            Err(_) => return Some("not a readable entry"),
            Ok(info) => info,
        };
        if info.wasmux != env!("CARGO_PKG_VERSION") {
            return Some("written by another wasmux version");
        }
        let known = self.engines.iter().find(|(name, _)| *name == info.engine);
        if known.is_some_and(|(_, version)| *version != info.engine_version) {
            return Some("another version of its engine");
        }
        let age = now.duration_since(entry.last_use).unwrap_or_default();
        if self.older_than.is_some_and(|limit| age > limit) {
            return Some("unused for longer than asked");
        }
        None
    }
}

/// One removed entry, and why.
#[derive(Debug, Clone)]
pub struct Removed {
    /// Its file.
    pub path: PathBuf,
    /// Bytes freed.
    pub size: u64,
    /// Why it went.
    pub reason: String,
}

/// What a prune or a verify did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The entries it removed.
    pub removed: Vec<Removed>,
    /// Entries left.
    pub kept: usize,
    /// Bytes left.
    pub kept_bytes: u64,
}

impl PrecompileCache {
    /// Every entry, oldest use first. Files that are not entries (a writer's temporary
    /// file, anything else) are left out.
    pub fn list(&self) -> io::Result<Vec<Listed>> {
        let mut entries = Vec::new();
        for (key, path, metadata) in self.entry_files()? {
            entries.push(Listed {
                key,
                size: metadata.len(),
                last_use: metadata.modified()?,
                info: read_info(&path, metadata.len()),
                path,
            });
        }
        entries.sort_by_key(|e| e.last_use);
        Ok(entries)
    }

    /// The files named as entries, with their (not followed) metadata: what the
    /// listing reads origins for, and what a write sums to know the cache's size.
    fn entry_files(&self) -> io::Result<Vec<(String, PathBuf, fs::Metadata)>> {
        let mut files = Vec::new();
        for dirent in fs::read_dir(self.dir())? {
            let dirent = dirent?;
            let name = dirent.file_name();
            let Some(key) = name.to_str().and_then(|n| n.strip_suffix(".bin")) else {
                continue;
            };
            let path = dirent.path();
            // Not followed: an entry replaced by a link is not an entry.
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => files.push((key.to_owned(), path, m)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {} // pruned meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(files)
    }

    /// Re-checks every entry's integrity (the whole payload, against the key its name
    /// gives); a damaged one is removed and reported.
    pub fn verify(&self) -> io::Result<Report> {
        let mut report = Report::default();
        for listed in self.list()? {
            let verdict = match parse_key(&listed.key) {
                None => Err("its name is not a key".to_owned()),
                Some(key) => match map_regular_file(&listed.path) {
                    Ok((_file, map)) => entry::verify(&key, &map)
                        .map(drop)
                        .map_err(|r| r.to_string()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => Err(e.to_string()),
                },
            };
            match verdict {
                Ok(()) => {
                    report.kept += 1;
                    report.kept_bytes += listed.size;
                }
                Err(reason) => remove(&listed, reason, &mut report)?,
            }
        }
        Ok(report)
    }

    /// Removes what `policy` says (see the module docs for the order), and writers'
    /// abandoned temporary files.
    pub fn prune(&self, policy: &PrunePolicy) -> io::Result<Report> {
        let now = SystemTime::now();
        self.remove_abandoned(now)?;
        let mut report = Report::default();
        let mut kept = Vec::new();
        for listed in self.list()? {
            match policy.unconditional(&listed, now) {
                Some(reason) => remove(&listed, reason.to_owned(), &mut report)?,
                None => kept.push(listed),
            }
        }
        let mut total: u64 = kept.iter().map(|e| e.size).sum();
        let mut kept = kept.into_iter();
        if let Some(max) = policy.max_size {
            // Oldest use first (the listing's order).
            for listed in kept.by_ref() {
                if total <= max {
                    report.kept += 1;
                    report.kept_bytes += listed.size;
                    break;
                }
                total -= listed.size;
                remove(&listed, "least recently used".to_owned(), &mut report)?;
            }
        }
        for listed in kept {
            report.kept += 1;
            report.kept_bytes += listed.size;
        }
        Ok(report)
    }

    /// After a write: if the cache is over `max_size`, prunes it to the low-water mark,
    /// dropping what `engines` (the writer's) never load first.
    pub(crate) fn keep_under(&self, max_size: u64, engines: &[&Descriptor]) -> io::Result<()> {
        let total: u64 = self.entry_files()?.iter().map(|(_, _, m)| m.len()).sum();
        if total <= max_size {
            return Ok(());
        }
        let policy = PrunePolicy {
            max_size: Some(max_size - max_size / LOW_WATER_MARGIN),
            ..PrunePolicy::for_engines(engines.iter().copied())
        };
        let report = self.prune(&policy)?;
        tracing::info!(
            cache = %self,
            removed = report.removed.len(),
            kept_bytes = report.kept_bytes,
            "precompile cache kept under its cap"
        );
        Ok(())
    }

    fn remove_abandoned(&self, now: SystemTime) -> io::Result<()> {
        for dirent in fs::read_dir(self.dir())? {
            let dirent = dirent?;
            let partial = dirent
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(PARTIAL_PREFIX) && n.ends_with(".partial"));
            let old = dirent
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > ABANDONED_AFTER);
            if partial && old {
                let _ = fs::remove_file(dirent.path());
            }
        }
        Ok(())
    }
}

/// Unlinks `listed` and records it; one already gone (another prune) is not an error.
fn remove(listed: &Listed, reason: String, report: &mut Report) -> io::Result<()> {
    match fs::remove_file(&listed.path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    report.removed.push(Removed {
        path: listed.path.clone(),
        size: listed.size,
        reason,
    });
    Ok(())
}

/// An entry's origin, read from its trailer without reading its payload.
fn read_info(path: &std::path::Path, size: u64) -> Result<EntryInfo, Rejection> {
    let total = usize::try_from(size).unwrap_or(usize::MAX);
    let truncated = || Rejection::Truncated(total);
    let file = open_regular_file(path).map_err(|_| truncated())?;
    let tail_start = size.checked_sub(TRAILER_LEN as u64).ok_or_else(truncated)?;
    let mut tail = [0u8; TRAILER_LEN];
    file.read_exact_at(&mut tail, tail_start)
        .map_err(|_| truncated())?;
    let trailer = Trailer::decode(&tail, total)?;
    let mut origin = vec![0u8; trailer.origin_len];
    file.read_exact_at(&mut origin, trailer.payload_len)
        .map_err(|_| truncated())?;
    Ok(EntryInfo::parse(&origin))
}

/// The key a file name (64 hex digits) spells.
fn parse_key(text: &str) -> Option<ArtifactKey> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(ArtifactKey::from_bytes(bytes))
}
