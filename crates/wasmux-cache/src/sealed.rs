//! A cache entry handed to a process that must not write the cache: a container's
//! init. Compiled code is native code other containers will run, so a container gets
//! a sealed in-memory copy of the one entry it needs (a memfd that no one, whatever
//! their privileges, can write, grow or shrink), never the cache's file or directory.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;

use rustix::fs::{MemfdFlags, SealFlags};
use wasmux_core::{ArtifactKey, ArtifactLookup, ArtifactOrigin, ArtifactStore, Descriptor};

use crate::{PrecompileCache, cache_key, check_entry, map_regular_file, verified_artifact};

/// One entry, sealed, as an [`ArtifactStore`] that reads it and never writes.
#[derive(Debug)]
pub struct SealedEntry {
    file: File,
}

impl PrecompileCache {
    /// A sealed copy of the entry for `key`, if there is one that verifies: the
    /// descriptor to hand to a process that may read this entry and nothing else of the
    /// cache ([`SealedEntry::from_fd`] on its side).
    pub fn sealed_entry(&self, key: &ArtifactKey) -> io::Result<Option<OwnedFd>> {
        let (file, map) = match map_regular_file(&self.entry_path(key)) {
            Ok(mapped) => mapped,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let bytes: &[u8] = &map;
        if check_entry(key, &file, bytes).is_err() {
            return Ok(None);
        }
        let memfd = rustix::fs::memfd_create(
            "wasmux-cache-entry",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        let mut copy = File::from(memfd);
        copy.write_all(bytes)?;
        drop((file, map));
        rustix::fs::fcntl_add_seals(
            &copy,
            SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
        )?;
        Ok(Some(copy.into()))
    }
}

impl SealedEntry {
    /// The entry behind a descriptor [`PrecompileCache::sealed_entry`] made.
    pub fn from_fd(fd: OwnedFd) -> Self {
        SealedEntry {
            file: File::from(fd),
        }
    }
}

impl fmt::Display for SealedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sealed copy of a cache entry")
    }
}

impl ArtifactStore for SealedEntry {
    fn key(&self, engine: &Descriptor, fingerprint: &str, module: &[u8]) -> ArtifactKey {
        cache_key(engine, fingerprint, module)
    }

    /// The entry, if it is `key`'s (it is verified again: the copy is sealed, but the
    /// descriptor could be another's).
    fn read(&self, key: &ArtifactKey) -> ArtifactLookup {
        let mapped = self.file.try_clone().and_then(|file| {
            // SAFETY: the memfd is sealed against writes, growth and shrinking, so
            // its contents cannot change under the mapping.
            #[allow(unsafe_code)]
            let map = unsafe { memmap2::Mmap::map(&file)? };
            Ok((file, map))
        });
        match mapped {
            Ok((file, map)) => match verified_artifact(key, file, map) {
                Ok(artifact) => ArtifactLookup::Found(artifact),
                Err(rejection) => ArtifactLookup::Rejected(format!("{self}: {rejection}")),
            },
            Err(e) => ArtifactLookup::Rejected(format!("{self}: {e}")),
        }
    }

    fn write(
        &self,
        _key: &ArtifactKey,
        _origin: &ArtifactOrigin<'_>,
        _payload: &[u8],
    ) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a sealed entry is read, never written",
        ))
    }
}
