//! Resolving a guest path inside a host directory with container semantics.
//!
//! Absolute symlinks resolve against the root and `..` stops at it, as the kernel's
//! `openat2(RESOLVE_IN_ROOT)` does for a chroot. cap-std is the right tool for the
//! guest's own file access (it refuses escapes), but it refuses absolute symlinks
//! outright, which container images use routinely (`/bin/sh -> /bin/busybox`); this is
//! only used host-side, before the run, to find the entrypoint and the working directory.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

const MAX_SYMLINKS: usize = 40;

/// Resolves `guest_path` under `root`, following symlinks without ever leaving `root`.
/// The result exists and contains no symlinks below `root`.
pub fn resolve_in_root(root: &Path, guest_path: &Path) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: VecDeque<OsString> = normal_parts(guest_path).collect();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&part);
        let meta = std::fs::symlink_metadata(&candidate)?;
        if !meta.file_type().is_symlink() {
            resolved.push(part);
            continue;
        }
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(io::Error::other(format!(
                "too many levels of symbolic links at {}",
                guest_path.display()
            )));
        }
        let target = std::fs::read_link(&candidate)?;
        if target.is_absolute() {
            resolved.clear();
        }
        for (i, p) in normal_parts(&target).enumerate() {
            pending.insert(i, p);
        }
    }
    Ok(root.join(resolved))
}

/// The path's components as names and `..`, dropping root and `.`.
fn normal_parts(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_owned()),
        Component::ParentDir => Some("..".into()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn stays_inside_root_through_dotdot_and_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::fs::write(r.join("usr/lib/app.wasm"), b"x").unwrap();
        symlink("/usr/lib", r.join("lib")).unwrap();
        symlink("../../../../usr/lib/app.wasm", r.join("rel.wasm")).unwrap();
        symlink("/etc", r.join("etc")).unwrap();

        let want = r.join("usr/lib/app.wasm");
        assert_eq!(
            resolve_in_root(r, Path::new("/lib/app.wasm")).unwrap(),
            want
        );
        assert_eq!(resolve_in_root(r, Path::new("/rel.wasm")).unwrap(), want);
        assert_eq!(
            resolve_in_root(r, Path::new("/../../usr/lib/app.wasm")).unwrap(),
            want
        );
        assert_eq!(
            resolve_in_root(r, Path::new("usr/./lib/../lib/app.wasm")).unwrap(),
            want
        );
        // `/etc` inside the root is a link to the host's /etc: it resolves to root/etc, absent.
        assert!(resolve_in_root(r, Path::new("/etc/hostname")).is_err());
    }

    #[test]
    fn symlink_loops_end_in_an_error() {
        let root = tempfile::tempdir().unwrap();
        symlink("/b", root.path().join("a")).unwrap();
        symlink("/a", root.path().join("b")).unwrap();
        assert!(resolve_in_root(root.path(), Path::new("/a")).is_err());
    }
}
