//! The on-disk layout of one cache entry, and its verification. An entry holds native
//! code, so nothing in it is trusted until the integrity hash written with it matches.
//!
//! Layout: payload · key (32 bytes) · payload length (u64 LE) · BLAKE3 of the payload
//! (32) · `MAGIC` (8). The payload comes first so an engine that maps its artifact
//! straight from the file (wasmtime) finds it at offset 0; the trailer after it is
//! ignored by the engine's own parser.

use wasmux_core::ArtifactKey;

const MAGIC: &[u8; 8] = b"WASMUXC\x02";
const TRAILER_LEN: usize = 32 + 8 + 32 + 8;

/// Why a file in the cache was not accepted as the entry it was looked up as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No trailer at the end: cut short while written or since, or not an entry.
    #[error("truncated entry, or not a wasmux cache entry of this version ({0} bytes)")]
    Truncated(usize),
    /// A valid entry, but for another key (copied or renamed into place).
    #[error("entry belongs to another module or engine")]
    Foreign,
    /// The trailer's length does not match the bytes before it.
    #[error("payload length mismatch: the trailer says {stated} bytes, the file holds {actual}")]
    Length {
        /// What the trailer says.
        stated: u64,
        /// What precedes the trailer.
        actual: u64,
    },
    /// The payload does not hash to what was written with it.
    #[error("integrity hash mismatch")]
    Corrupt,
}

/// Builds the bytes of the entry for `key` holding `payload`.
pub fn encode(key: &ArtifactKey, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + TRAILER_LEN);
    out.extend_from_slice(payload);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(payload).as_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// Checks `entry` against `key`; on success returns the payload's length (the payload
/// is `entry[..len]`, not copied out: artifacts are large and may be mapped).
pub fn verify(key: &ArtifactKey, entry: &[u8]) -> Result<usize, Rejection> {
    let payload_len = entry
        .len()
        .checked_sub(TRAILER_LEN)
        .filter(|_| entry.ends_with(MAGIC))
        .ok_or(Rejection::Truncated(entry.len()))?;
    let (payload, trailer) = entry.split_at(payload_len);
    let (stored_key, rest) = trailer.split_at(32);
    let (length, rest) = rest.split_at(8);
    let digest = &rest[..32];
    if stored_key != key.as_bytes() {
        return Err(Rejection::Foreign);
    }
    let mut length_bytes = [0u8; 8];
    length_bytes.copy_from_slice(length);
    let stated = u64::from_le_bytes(length_bytes);
    if stated != payload_len as u64 {
        return Err(Rejection::Length {
            stated,
            actual: payload_len as u64,
        });
    }
    // Constant-time comparison is not needed: the hash guards against damage, not
    // against a writer (who could write a matching hash).
    if blake3::hash(payload).as_bytes() != digest {
        return Err(Rejection::Corrupt);
    }
    Ok(payload_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: ArtifactKey = ArtifactKey::from_bytes([7; 32]);

    #[test]
    fn a_written_entry_verifies() {
        let entry = encode(&KEY, b"native code");
        assert_eq!(verify(&KEY, &entry), Ok(11));
        assert_eq!(&entry[..11], b"native code");
        assert_eq!(verify(&KEY, &encode(&KEY, b"")), Ok(0));
    }

    #[test]
    fn every_damage_is_rejected() {
        let good = encode(&KEY, b"native code");
        let mut flipped = good.clone();
        flipped[0] ^= 1;
        let mut bad_hash = good.clone();
        bad_hash[good.len() - 9] ^= 1;
        let mut bad_magic = good.clone();
        *bad_magic.last_mut().unwrap() = b'X';
        let mut prepended = vec![0];
        prepended.extend_from_slice(&good);
        let cases = [
            (flipped, Rejection::Corrupt),
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
                encode(&ArtifactKey::from_bytes([8; 32]), b"native code"),
                Rejection::Foreign,
            ),
        ];
        for (entry, expected) in cases {
            assert_eq!(verify(&KEY, &entry), Err(expected));
        }
    }
}
