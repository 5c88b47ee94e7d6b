//! The mark an entry's file carries once its integrity hash has matched, so a warm
//! start does not hash the whole entry again (tens of megabytes for a big module: 10%
//! of a warm CPython start).
//!
//! The mark is an extended attribute on the entry's inode holding the size and
//! modification time the file had when it was hashed. Writing to the file changes its
//! modification time, and replacing it (the cache only ever renames a new entry into
//! place) makes a new inode without the mark, so either costs the mark and the next
//! read hashes again. As with the hash itself this guards against damage, not against
//! someone who may write the cache (they could write a matching hash, or the mark).
//!
//! A file system's timestamps are coarse (a clock tick), so a write in the same tick as
//! the last change would leave the time as it was. A file changed within [`SETTLED`] of
//! its hashing is therefore never marked, the way git treats a "racily clean" file.
//! Where extended attributes are not available (a read-only cache, a file system
//! without them), every read hashes, as before.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use rustix::fs::XattrFlags;

const ATTRIBUTE: &str = "user.wasmux.hashed";
/// How long after its last change a file must have been hashed to be marked.
const SETTLED: Duration = Duration::from_secs(2);

/// What an entry's file looks like now: its size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    text: String,
    modified: SystemTime,
}

impl Stamp {
    /// The stamp of `file` now, if its metadata can be read.
    pub(crate) fn of(file: &File) -> Option<Stamp> {
        let metadata = file.metadata().ok()?;
        Some(Stamp {
            text: format!(
                "v1 size={} mtime={}.{:09}",
                metadata.size(),
                metadata.mtime(),
                metadata.mtime_nsec()
            ),
            modified: metadata.modified().ok()?,
        })
    }

    /// Whether `file` is marked with this stamp: its hash matched when it looked as it
    /// does now.
    pub(crate) fn is_marked_on(&self, file: &File) -> bool {
        let mut buf = [0u8; 96];
        match rustix::fs::fgetxattr(file, ATTRIBUTE, &mut buf) {
            Ok(len) => buf.get(..len) == Some(self.text.as_bytes()),
            Err(_) => false,
        }
    }

    /// Marks `file`, whose hash matched when it looked as this stamp says, unless it
    /// had changed too recently for a later change to show. Best effort.
    pub(crate) fn mark(&self, file: &File) {
        let settled = SystemTime::now()
            .duration_since(self.modified)
            .is_ok_and(|age| age >= SETTLED);
        if settled {
            let _ =
                rustix::fs::fsetxattr(file, ATTRIBUTE, self.text.as_bytes(), XattrFlags::empty());
        }
    }
}
