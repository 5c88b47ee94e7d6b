//! Finding and reading the module a process names, shared by the bundle mapping (which
//! resolves it through the mount table) and the in-container mapping (where the rootfs
//! is `/`).

use std::path::Path;

use crate::detect::{Sniffed, sniff};
use crate::error::{Error, Result};

/// The guest path of `process.args[0]`'s module: absolute, or relative to `cwd`.
pub(crate) fn guest_path(cwd: &str, module: &str) -> String {
    if module.starts_with('/') {
        module.to_owned()
    } else {
        format!("{}/{module}", cwd.trim_end_matches('/'))
    }
}

/// The error for an entrypoint that cannot be found or read.
pub(crate) fn not_found(guest: &str, reason: impl Into<String>) -> Error {
    Error::EntrypointNotFound {
        path: guest.to_owned(),
        reason: reason.into(),
    }
}

/// Reads the module at `host` (the guest's `guest`) and classifies its content.
pub(crate) fn read(guest: &str, host: &Path) -> Result<Sniffed> {
    if host.is_dir() {
        return Err(not_found(guest, "it is a directory"));
    }
    let bytes = std::fs::read(host).map_err(|e| not_found(guest, e.to_string()))?;
    sniff(bytes, guest)
}
