//! The default devices the OCI runtime spec promises every Linux container: `/dev/null`,
//! `/dev/zero`, `/dev/full`, `/dev/random` and `/dev/urandom`, and nothing else of `/dev`.
//!
//! WASI can only preopen directories, so each run gets its own scratch `/dev` holding real
//! device nodes (as crun creates them): the guest opens them through WASI like any file,
//! and the kernel gives them their Linux behaviour. Creating a node needs CAP_MKNOD; an
//! embedder without it gets an empty `/dev` and a warning.

use std::path::Path;

use rustix::fs::{CWD, FileType, Mode, chmodat, makedev, mknodat};

/// Name, major and minor of each default character device.
const DEFAULT_DEVICES: [(&str, u32, u32); 5] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
];

/// Creates the default device nodes in `dir`, readable and writable by everyone.
pub(crate) fn populate(dir: &Path) -> std::io::Result<()> {
    let mode = Mode::from_raw_mode(0o666);
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = dir.join(name);
        mknodat(
            CWD,
            &path,
            FileType::CharacterDevice,
            mode,
            makedev(major, minor),
        )?;
        // mknod applies the umask; the devices must be usable whatever it is.
        chmodat(CWD, &path, mode, rustix::fs::AtFlags::empty())?;
    }
    Ok(())
}
