//! Finding and reading the module a process names, shared by the bundle mapping (which
//! resolves it through the mount table) and the in-container mapping (where the rootfs
//! is `/`).

use std::path::Path;

use wasmux_core::{Error, HostDir, Result};

use crate::detect::{Sniffed, sniff};

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

/// Reads the module at `path` beneath `root` (the guest's `guest`), by descriptor, and
/// classifies its content. Only a regular file of bounded size is read
/// ([`HostDir::read_module`]): a FIFO or a device as the entrypoint is an error.
pub(crate) fn read(guest: &str, root: &HostDir, path: &Path) -> Result<Sniffed> {
    let bytes = root
        .read_module(path)
        .map_err(|e| not_found(guest, e.to_string()))?;
    sniff(bytes, guest)
}
