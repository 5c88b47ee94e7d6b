//! Compiled code kept between runs, as the core sees it: a store that finds and keeps
//! an engine's serialised modules by key ([`ArtifactStore`]; the precompile cache in
//! `wasmux-cache` is the one wasmux ships) and the verified entry it hands a backend
//! ([`Artifact`]). The core decides when to look up, compile and store (`load`); the
//! store decides where, how entries are keyed and how they are verified.

use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Deref;

use crate::engine::Descriptor;

/// The address of one compiled artifact: a 256-bit hash over everything that decides
/// whether compiled code may be reused (module bytes, engine, version, configuration,
/// host CPU features), made by the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArtifactKey([u8; 32]);

impl ArtifactKey {
    /// A key from the store's hash.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        ArtifactKey(bytes)
    }

    /// The hash, as stored with an entry.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactKey({self})")
    }
}

/// A stored artifact whose integrity the store has verified: the only thing a backend's
/// [`Precompile::load_precompiled`](crate::Precompile::load_precompiled) accepts, so a
/// backend handed one knows it holds bytes its own engine serialised.
pub struct Artifact {
    file: File,
    entry: Box<dyn Deref<Target = [u8]> + Send + Sync>,
    payload_len: usize,
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Artifact")
            .field("file", &self.file)
            .field("payload_len", &self.payload_len)
            .finish_non_exhaustive()
    }
}

impl Artifact {
    /// An artifact from an entry the store has verified: `entry[..payload_len]` is the
    /// engine's serialised module (`None` if `payload_len` is past the entry's end).
    ///
    /// # Safety
    /// Backends load these bytes as native code and run it. The caller guarantees the
    /// payload is exactly what the engine's
    /// [`compile_for_cache`](crate::Precompile::compile_for_cache) returned for this
    /// artifact's key (by a hash it wrote with it), and that neither `entry` nor `file`
    /// changes while the artifact lives.
    #[allow(unsafe_code)]
    pub unsafe fn verified(
        file: File,
        entry: impl Deref<Target = [u8]> + Send + Sync + 'static,
        payload_len: usize,
    ) -> Option<Self> {
        (payload_len <= entry.len()).then(|| Artifact {
            file,
            entry: Box::new(entry),
            payload_len,
        })
    }

    /// The engine's serialised module.
    pub fn bytes(&self) -> &[u8] {
        &self.entry[..self.payload_len]
    }

    /// The entry's open file, for engines that map their artifact from a file
    /// themselves: the payload starts at offset 0 and is followed by the store's own
    /// trailer ([`bytes`](Self::bytes) ends where it starts).
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// What looking a key up found.
#[derive(Debug)]
pub enum ArtifactLookup {
    /// No entry for the key.
    Missing,
    /// A verified entry.
    Found(Artifact),
    /// An entry that failed verification (and why); the store has discarded it.
    Rejected(String),
}

/// What an entry's code was compiled from, stored with it: the inputs of its key,
/// so that a store's tools can say what each entry is and drop the ones no engine of
/// this build will load again.
#[derive(Debug, Clone, Copy)]
pub struct ArtifactOrigin<'a> {
    /// The engine that compiled it.
    pub engine: &'a Descriptor,
    /// The engine's configuration ([`Precompile::fingerprint`](crate::Precompile::fingerprint)).
    pub fingerprint: &'a str,
    /// The module or component's bytes.
    pub module: &'a [u8],
}

/// Where compiled code is kept between runs. Shown (`Display`) as its location in
/// messages about it.
pub trait ArtifactStore: fmt::Display + Send + Sync {
    /// The key of `module` compiled by the engine `engine` names, configured as
    /// `fingerprint` says ([`Precompile::fingerprint`](crate::Precompile::fingerprint)),
    /// on this host.
    fn key(&self, engine: &Descriptor, fingerprint: &str, module: &[u8]) -> ArtifactKey;

    /// Finds and verifies the entry for `key`.
    fn read(&self, key: &ArtifactKey) -> ArtifactLookup;

    /// Stores `payload` (an engine's serialised module, compiled from `origin`) as the
    /// entry for `key`, whole or not at all.
    fn write(
        &self,
        key: &ArtifactKey,
        origin: &ArtifactOrigin<'_>,
        payload: &[u8],
    ) -> io::Result<()>;
}
