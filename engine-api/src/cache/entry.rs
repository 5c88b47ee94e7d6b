//! The on-disk layout of one cache entry, and its verification. An entry holds native
//! code, so nothing in it is trusted until the integrity hash written with it matches.
//!
//! Layout: `MAGIC` (8 bytes) · key (32) · payload length (u64 LE) · BLAKE3 of the
//! payload (32) · payload.

use super::key::CacheKey;

const MAGIC: &[u8; 8] = b"WASMUXC\x01";
const HEADER_LEN: usize = 8 + 32 + 8 + 32;

/// Why a file in the cache was not accepted as the entry it was looked up as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Shorter than a header, or than the payload length the header states.
    #[error("truncated entry ({0} bytes)")]
    Truncated(usize),
    /// Not a wasmux cache entry, or one of another layout version.
    #[error("not a wasmux cache entry of this version")]
    BadMagic,
    /// A valid entry, but for another key (copied or renamed into place).
    #[error("entry belongs to another module or engine")]
    Foreign,
    /// Longer than the header says: something was appended.
    #[error("trailing bytes after the payload")]
    Trailing,
    /// The payload does not hash to what was written with it.
    #[error("integrity hash mismatch")]
    Corrupt,
}

/// Builds the bytes of the entry for `key` holding `payload`.
pub fn encode(key: &CacheKey, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key.0);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(payload).as_bytes());
    out.extend_from_slice(payload);
    out
}

/// Where the payload starts in an entry.
pub const PAYLOAD_OFFSET: usize = HEADER_LEN;

/// Checks `entry` against `key`; `Ok` only if every check passes, and then the payload
/// is `entry[PAYLOAD_OFFSET..]` (not copied out: artifacts are large).
pub fn verify(key: &CacheKey, entry: &[u8]) -> Result<(), Rejection> {
    let header = entry
        .get(..HEADER_LEN)
        .ok_or(Rejection::Truncated(entry.len()))?;
    let (magic, rest) = header.split_at(8);
    let (stored_key, rest) = rest.split_at(32);
    let (length, digest) = rest.split_at(8);
    if magic != MAGIC {
        return Err(Rejection::BadMagic);
    }
    if stored_key != key.0 {
        return Err(Rejection::Foreign);
    }
    let mut length_bytes = [0u8; 8];
    length_bytes.copy_from_slice(length);
    let stated = u64::from_le_bytes(length_bytes);
    let actual = (entry.len() - HEADER_LEN) as u64;
    if actual < stated {
        return Err(Rejection::Truncated(entry.len()));
    }
    if actual > stated {
        return Err(Rejection::Trailing);
    }
    // Constant-time comparison is not needed: the hash guards against damage, not
    // against a writer (who could write a matching hash).
    if blake3::hash(&entry[HEADER_LEN..]).as_bytes() != digest {
        return Err(Rejection::Corrupt);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: CacheKey = CacheKey([7; 32]);

    #[test]
    fn a_written_entry_verifies() {
        let entry = encode(&KEY, b"native code");
        assert_eq!(verify(&KEY, &entry), Ok(()));
        assert_eq!(&entry[PAYLOAD_OFFSET..], b"native code");
        assert_eq!(verify(&KEY, &encode(&KEY, b"")), Ok(()));
    }

    #[test]
    fn every_damage_is_rejected() {
        let good = encode(&KEY, b"native code");
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut bad_hash = good.clone();
        bad_hash[HEADER_LEN - 1] ^= 1;
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        let mut appended = good.clone();
        appended.push(0);
        let cases = [
            (flipped, Rejection::Corrupt),
            (bad_hash, Rejection::Corrupt),
            (bad_magic, Rejection::BadMagic),
            (appended, Rejection::Trailing),
            (
                good[..good.len() - 1].to_vec(),
                Rejection::Truncated(good.len() - 1),
            ),
            (good[..10].to_vec(), Rejection::Truncated(10)),
            (Vec::new(), Rejection::Truncated(0)),
            (
                encode(&CacheKey([8; 32]), b"native code"),
                Rejection::Foreign,
            ),
        ];
        for (entry, expected) in cases {
            assert_eq!(verify(&KEY, &entry), Err(expected));
        }
    }
}
