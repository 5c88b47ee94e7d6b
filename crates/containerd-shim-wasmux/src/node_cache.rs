//! The node's precompile cache, reachable from inside containers.
//!
//! A container's module runs in its init process after `pivot_root`, where no host path
//! is visible. So the shim opens the cache directory when it starts, before
//! containerd-shim-wasm forks its zygote; every container process inherits that
//! descriptor (close-on-exec: a native container's `execve` drops it, and only wasmux's
//! own code in the init process uses it, never the guest) and reaches the directory as
//! `/proc/self/fd/N`. A second start of the same module on the node then maps the
//! stored code instead of compiling, whatever the image's layers are.
//!
//! containerd-shim-wasm's own `Compiler` hook stores precompiled layers in containerd's
//! content store, but only for images whose layers are Wasm artifacts; containerd 1.6
//! cannot unpack those, so on the images it runs the hook is never called.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::OnceLock;

use wasmux::PrecompileCache;

/// Where the cache lives when the environment does not say: a node-wide directory, as
/// containerd runs shims as root, often without `HOME`.
pub(crate) const NODE_CACHE_DIR: &str = "/var/cache/wasmux/modules";

static CACHE_DIR: OnceLock<Option<File>> = OnceLock::new();

/// Opens (creating, private) the cache directory `dir` (in `main`: the launcher's,
/// with [`NODE_CACHE_DIR`] as its default; `None` when the cache is off); called once,
/// first thing in `main`. A directory that cannot be used costs the cache, not the shim.
pub(crate) fn open(dir: Option<PathBuf>) {
    CACHE_DIR.get_or_init(|| match dir {
        None => None,
        Some(dir) => PrecompileCache::open(&dir)
            .and_then(|cache| File::open(cache.dir()))
            .inspect_err(|e| {
                eprintln!(
                    "containerd-shim-wasmux: precompile cache {} unusable, compiling every start: {e}",
                    dir.display()
                )
            })
            .ok(),
    });
}

/// The inherited cache directory as this process (a container's init) reaches it.
pub(crate) fn inherited_dir() -> Option<PathBuf> {
    let dir = CACHE_DIR.get()?.as_ref()?;
    Some(PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opened_directory_is_reached_through_its_descriptor() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("modules");
        open(Some(dir.clone()));
        let reached = inherited_dir().unwrap();
        std::fs::write(reached.join("probe"), b"x").unwrap();
        assert_eq!(std::fs::read(dir.join("probe")).unwrap(), b"x");
        let mode = std::os::unix::fs::PermissionsExt::mode(&dir.metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o700, "the cache directory is private");
    }
}
