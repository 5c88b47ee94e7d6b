//! The on-disk layout of one cache entry, and its verification. An entry holds native
//! code, so nothing in it is trusted until the integrity hash written with it matches.
//!
//! Layout: payload · origin (text) · origin length (u32 LE) · key (32 bytes) · payload
//! length (u64 LE) · BLAKE3 of payload and origin (32) · `MAGIC` (8). The payload comes
//! first so an engine that maps its artifact straight from the file (wasmtime) finds it
//! at offset 0; what follows is ignored by the engine's own parser. The fixed trailer at
//! the end lets the cache's tools read an entry's origin without reading its payload.

use wasmux_core::{ArtifactKey, ArtifactOrigin};

const MAGIC: &[u8; 8] = b"WASMUXC\x03";
/// The fixed part at the end of every entry.
pub const TRAILER_LEN: usize = 4 + 32 + 8 + 32 + 8;
/// More origin text than any entry writes: a bound for readers of damaged files.
const MAX_ORIGIN_LEN: usize = 4096;

/// Why a file in the cache was not accepted as the entry it was looked up as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No trailer at the end: cut short while written or since, or not an entry.
    #[error("truncated entry, or not a wasmux cache entry of this version ({0} bytes)")]
    Truncated(usize),
    /// A valid entry, but for another key (copied or renamed into place).
    #[error("entry belongs to another module or engine")]
    Foreign,
    /// The trailer's lengths do not match the bytes before it.
    #[error("payload length mismatch: the trailer says {stated} bytes, the file holds {actual}")]
    Length {
        /// What the trailer says.
        stated: u64,
        /// What precedes the origin.
        actual: u64,
    },
    /// The payload does not hash to what was written with it.
    #[error("integrity hash mismatch")]
    Corrupt,
}

/// What an entry says it was compiled from (its [`ArtifactOrigin`], in text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryInfo {
    /// The wasmux version that wrote it (part of its key: another version never hits).
    pub wasmux: String,
    /// The engine's name.
    pub engine: String,
    /// The engine's version.
    pub engine_version: String,
    /// The engine's configuration fingerprint.
    pub fingerprint: String,
    /// BLAKE3 of the module, in hex.
    pub module: String,
}

impl EntryInfo {
    /// The origin of code compiled now, by this build.
    pub fn of(origin: &ArtifactOrigin<'_>) -> Self {
        EntryInfo {
            wasmux: env!("CARGO_PKG_VERSION").to_owned(),
            engine: origin.engine.name.to_owned(),
            engine_version: origin.engine.version.to_owned(),
            fingerprint: origin.fingerprint.to_owned(),
            module: blake3::hash(origin.module).to_hex().to_string(),
        }
    }

    fn fields(&self) -> [(&'static str, &String); 5] {
        [
            ("wasmux", &self.wasmux),
            ("engine", &self.engine),
            ("engine-version", &self.engine_version),
            ("fingerprint", &self.fingerprint),
            ("module", &self.module),
        ]
    }

    fn to_text(&self) -> String {
        self.fields()
            .iter()
            .map(|(name, value)| format!("{name}={}\n", value.replace('\n', " ")))
            .collect()
    }

    /// Parses the origin text; unknown lines are skipped (a later version's fields).
    pub fn parse(text: &[u8]) -> Self {
        let mut info = EntryInfo::default();
        for line in String::from_utf8_lossy(text).lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let field = match name {
                "wasmux" => &mut info.wasmux,
                "engine" => &mut info.engine,
                "engine-version" => &mut info.engine_version,
                "fingerprint" => &mut info.fingerprint,
                "module" => &mut info.module,
                _ => continue,
            };
            *field = value.to_owned();
        }
        info
    }
}

/// An entry's fixed trailer, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Bytes of origin text before the trailer.
    pub origin_len: usize,
    /// The key it was written under.
    pub key: [u8; 32],
    /// Bytes of payload at the start.
    pub payload_len: u64,
    digest: [u8; 32],
}

impl Trailer {
    /// Decodes the last [`TRAILER_LEN`] bytes of an entry of `total` bytes, checking
    /// that its lengths add up to `total`.
    pub fn decode(tail: &[u8], total: usize) -> Result<Self, Rejection> {
        if tail.len() != TRAILER_LEN || !tail.ends_with(MAGIC) {
            return Err(Rejection::Truncated(total));
        }
        let (origin_len, rest) = tail.split_at(4);
        let (key, rest) = rest.split_at(32);
        let (payload_len, rest) = rest.split_at(8);
        let origin_len = u32::from_le_bytes(origin_len.try_into().unwrap_or_default()) as usize;
        let trailer = Trailer {
            origin_len,
            key: key.try_into().unwrap_or_default(),
            payload_len: u64::from_le_bytes(payload_len.try_into().unwrap_or_default()),
            digest: rest[..32].try_into().unwrap_or_default(),
        };
        let actual = total
            .checked_sub(TRAILER_LEN + origin_len)
            .filter(|_| origin_len <= MAX_ORIGIN_LEN)
            .ok_or(Rejection::Truncated(total))?;
        if trailer.payload_len != actual as u64 {
            return Err(Rejection::Length {
                stated: trailer.payload_len,
                actual: actual as u64,
            });
        }
        Ok(trailer)
    }
}

/// Builds the bytes of the entry for `key` holding `payload`, compiled from `info`.
pub fn encode(key: &ArtifactKey, info: &EntryInfo, payload: &[u8]) -> Vec<u8> {
    let origin = info.to_text();
    let mut out = Vec::with_capacity(payload.len() + origin.len() + TRAILER_LEN);
    out.extend_from_slice(payload);
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(&(origin.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(digest(payload, origin.as_bytes()).as_bytes());
    out.extend_from_slice(MAGIC);
    out
}

fn digest(payload: &[u8], origin: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(payload);
    hasher.update(origin);
    hasher.finalize()
}

/// Checks `entry` against `key`; on success returns the payload's length (the payload
/// is `entry[..len]`, not copied out: artifacts are large and may be mapped).
pub fn verify(key: &ArtifactKey, entry: &[u8]) -> Result<usize, Rejection> {
    let trailer = check_trailer(key, entry)?;
    let payload_len = trailer.payload_len as usize;
    let payload = &entry[..payload_len];
    let origin = &entry[payload_len..entry.len() - TRAILER_LEN];
    // Constant-time comparison is not needed: the hash guards against damage, not
    // against a writer (who could write a matching hash).
    if digest(payload, origin).as_bytes() != &trailer.digest {
        return Err(Rejection::Corrupt);
    }
    Ok(payload_len)
}

/// Everything [`verify`] checks but the hash: for an entry whose hash matched before
/// and which has not changed since (`hash_mark`).
pub fn check_trailer(key: &ArtifactKey, entry: &[u8]) -> Result<Trailer, Rejection> {
    let tail_start = entry
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or(Rejection::Truncated(entry.len()))?;
    let trailer = Trailer::decode(&entry[tail_start..], entry.len())?;
    if &trailer.key != key.as_bytes() {
        return Err(Rejection::Foreign);
    }
    Ok(trailer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: ArtifactKey = ArtifactKey::from_bytes([7; 32]);

    fn info() -> EntryInfo {
        EntryInfo {
            wasmux: "0.1.0".into(),
            engine: "wasmtime".into(),
            engine_version: "48.0.8".into(),
            fingerprint: "cranelift-0123".into(),
            module: "ab".repeat(32),
        }
    }

    #[test]
    fn a_written_entry_verifies_and_tells_its_origin() {
        let entry = encode(&KEY, &info(), b"native code");
        assert_eq!(verify(&KEY, &entry), Ok(11));
        assert_eq!(&entry[..11], b"native code");
        assert_eq!(verify(&KEY, &encode(&KEY, &info(), b"")), Ok(0));
        let trailer = Trailer::decode(&entry[entry.len() - TRAILER_LEN..], entry.len()).unwrap();
        let origin = &entry[11..11 + trailer.origin_len];
        assert_eq!(EntryInfo::parse(origin), info());
    }

    #[test]
    fn every_damage_is_rejected() {
        let good = encode(&KEY, &info(), b"native code");
        let mut flipped = good.clone();
        flipped[0] ^= 1;
        let mut origin_changed = good.clone();
        origin_changed[12] ^= 1;
        let mut bad_hash = good.clone();
        bad_hash[good.len() - 9] ^= 1;
        let mut bad_magic = good.clone();
        *bad_magic.last_mut().unwrap() = b'X';
        let mut prepended = vec![0];
        prepended.extend_from_slice(&good);
        let cases = [
            (flipped, Rejection::Corrupt),
            (origin_changed, Rejection::Corrupt),
            (bad_hash, Rejection::Corrupt),
            (bad_magic, Rejection::Truncated(good.len())),
            (
                prepended,
                Rejection::Length {
                    stated: 11,
                    actual: 12,
                },
            ),
            (
                good[..good.len() - 1].to_vec(),
                Rejection::Truncated(good.len() - 1),
            ),
            (good[..10].to_vec(), Rejection::Truncated(10)),
            (Vec::new(), Rejection::Truncated(0)),
            (
                encode(&ArtifactKey::from_bytes([8; 32]), &info(), b"native code"),
                Rejection::Foreign,
            ),
        ];
        for (entry, expected) in cases {
            assert_eq!(verify(&KEY, &entry), Err(expected));
        }
    }
}
