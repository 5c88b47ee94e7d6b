//! Container IDs: the only caller-chosen part of a state path, so checked before use.

use crate::error::{OciError, Result};

/// Longest accepted ID; runc's IDs are 64 hex digits, podman's and containerd's shorter.
const MAX_LEN: usize = 1024;

/// Checks that `id` names one directory entry directly under the state root: not
/// empty, not `.`/`..`, no `/` or NUL, only the characters runc allows
/// (`[A-Za-z0-9_+.-]`), not over-long.
pub fn validate(id: &str) -> Result<&str> {
    let invalid = |reason| OciError::InvalidId {
        id: id.to_owned(),
        reason,
    };
    if id.is_empty() {
        return Err(invalid("it is empty"));
    }
    if id.len() > MAX_LEN {
        return Err(invalid("it is longer than 1024 bytes"));
    }
    if id == "." || id == ".." {
        return Err(invalid("it is a relative path component"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b))
    {
        return Err(invalid(
            "only letters, digits, '_', '+', '-' and '.' are allowed",
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_leave_the_state_root_are_refused() {
        let long = "a".repeat(MAX_LEN + 1);
        for bad in [
            "", ".", "..", "../x", "a/b", "/abs", "a\0b", "a b", "é", &long,
        ] {
            assert!(validate(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn ids_podman_and_containerd_use_are_accepted() {
        for good in [
            "4f2c0a1e9b7d4c8a9e1f2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70",
            "hello-1",
            "k8s.io_pod+1",
            "..a",
        ] {
            assert_eq!(validate(good).unwrap(), good);
        }
    }
}
