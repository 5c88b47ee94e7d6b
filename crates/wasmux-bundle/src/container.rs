//! A process that is already inside its container: a shim's container init after
//! `pivot_root` (runwasi's `containerd-shim-wasm` runs the guest there). The rootfs is
//! `/` and the runtime has made the mounts; what the guest may reach is derived from the
//! mount table the process sees, never from a bundle on the host.
//!
//! The container's `/proc` and `/sys` (and the other kernel file systems) are not
//! offered: `/proc/self/environ` would show the guest its runtime's environment, which
//! the shim inherits from the host. Every other top-level directory, and every mount
//! point, becomes a preopen, read-only where the kernel mounted it read-only. As with a
//! working directory other than `/` (docs/oci-to-wasi.md, "Known limits"), files
//! directly in `/` are not reachable by the guest; the module itself is read by the host.

use std::path::{Path, PathBuf};

use wasmux_core::{Error, HostDir, Preopen, Result, RunSpec};

use crate::bundle::{check_args, parse_env, split_entry};
use crate::detect::Sniffed;
use crate::entrypoint;

/// File systems that are the kernel's view of the machine, not the container's files.
const KERNEL_FILESYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "pstore",
    "configfs",
    "fusectl",
    "binfmt_misc",
    "hugetlbfs",
];

/// One line of `/proc/self/mountinfo`: where, what and how it is mounted. The one
/// parser of it in wasmux (the container mapping, wasmux-oci's cgroup placement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPoint {
    /// The mount point, unescaped.
    pub path: PathBuf,
    /// The file system type (`proc`, `cgroup2`, `ext4`...).
    pub fstype: String,
    /// Mounted read-only (the per-mount `ro` option).
    pub read_only: bool,
    /// The super block's options (for cgroup v1, its controllers: `rw,cpu,cpuacct`).
    pub super_options: Vec<String>,
}

/// The spec of a container process whose root is already `/`: `args` and `env` as
/// the OCI spec's `process` gives them (`args[0]` is the module, `path#func` names an
/// entry function), `cwd` its working directory. The module must be Wasm.
pub fn container_process_spec(args: &[String], env: &[String], cwd: &str) -> Result<RunSpec> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("reading /proc/self/mountinfo", e))?;
    container_root_spec(Path::new("/"), &parse_mountinfo(&mountinfo), args, env, cwd)
}

/// [`container_process_spec`] with the root and mount
/// table given, so it can be checked without being inside a container.
fn container_root_spec(
    root: &Path,
    mounts: &[MountPoint],
    args: &[String],
    env: &[String],
    cwd: &str,
) -> Result<RunSpec> {
    check_args(args)?;
    let Some(arg0) = args.first() else {
        return Err(Error::InvalidBundle("process.args is empty".into()));
    };
    if !cwd.starts_with('/') {
        return Err(Error::InvalidBundle(format!(
            "process.cwd {cwd} must be an absolute path"
        )));
    }
    let (module, entry) = split_entry(arg0);
    let guest = entrypoint::guest_path(cwd, module);
    let root_dir =
        HostDir::open(root).map_err(|e| Error::io(format!("opening {}", root.display()), e))?;
    let wasm = match entrypoint::read(&guest, &root_dir, Path::new(&guest))? {
        Sniffed::Wasm(wasm) => wasm,
        Sniffed::NotWasm(reason) => {
            return Err(Error::NotWasm {
                path: guest,
                reason,
            });
        }
    };
    let mut spec = RunSpec::new(wasm);
    spec.entry = entry.map(str::to_owned);
    spec.args = args.to_vec();
    spec.env = parse_env(env)?;
    spec.cwd = cwd.to_owned();
    spec.mounts = container_preopens(root, mounts)?;
    Ok(spec)
}

/// Every top-level directory of `root` and every mount point below it, except kernel
/// file systems and what lies beneath them.
fn container_preopens(root: &Path, mounts: &[MountPoint]) -> Result<Vec<Preopen>> {
    let kernel: Vec<&Path> = mounts
        .iter()
        .filter(|m| KERNEL_FILESYSTEMS.contains(&m.fstype.as_str()))
        .map(|m| m.path.as_path())
        .collect();
    let hidden = |guest: &Path| kernel.iter().any(|k| guest.starts_with(k));
    // The mount a guest path lives on: the longest mount point above it.
    let read_only = |guest: &Path| {
        mounts
            .iter()
            .filter(|m| guest.starts_with(&m.path))
            .max_by_key(|m| m.path.as_os_str().len())
            .is_some_and(|m| m.read_only)
    };
    let mut preopens = Vec::new();
    let entries =
        std::fs::read_dir(root).map_err(|e| Error::io(format!("listing {}", root.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", root.display()), e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let guest = Path::new("/").join(&name);
        if hidden(&guest) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        preopens.push(Preopen {
            host: root.join(&name),
            guest: guest.display().to_string(),
            read_only: read_only(&guest),
        });
    }
    for mount in mounts {
        let depth = mount.path.components().count();
        if depth > 2 && !hidden(&mount.path) && root.join(relative(&mount.path)).is_dir() {
            preopens.push(Preopen {
                host: root.join(relative(&mount.path)),
                guest: mount.path.display().to_string(),
                read_only: mount.read_only,
            });
        }
    }
    preopens.sort_by(|a, b| a.guest.cmp(&b.guest));
    Ok(preopens)
}

fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// `/proc/self/mountinfo` (proc(5)): `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS
/// [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`, with spaces in paths escaped as `\040`.
/// Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountPoint> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let path = PathBuf::from(unescape(fields.get(4)?));
            let options = fields.get(5)?;
            let mut right = right.split(' ');
            let fstype = right.next()?.to_owned();
            let super_options = right
                .nth(1)
                .map(|o| o.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            Some(MountPoint {
                path,
                fstype,
                read_only: options.split(',').any(|o| o == "ro"),
                super_options,
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash).
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
1 0 0:1 / / rw,relatime - overlay overlay rw
2 1 0:2 / /proc rw,nosuid - proc proc rw
3 1 0:3 / /dev rw,nosuid - tmpfs tmpfs rw
4 3 0:4 / /dev/pts rw - devpts devpts rw
5 1 0:5 / /sys ro,nosuid - sysfs sysfs ro
6 5 0:6 / /sys/fs/cgroup ro - cgroup2 cgroup rw
7 1 8:1 /data /data ro,relatime - ext4 /dev/sda1 rw
8 1 8:1 /my\\040dir /mnt/my\\040dir ro - ext4 /dev/sda1 rw
";

    #[test]
    fn mountinfo_is_parsed_with_escapes_and_flags() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 8);
        assert_eq!(mounts[1].fstype, "proc");
        assert!(mounts[4].read_only && !mounts[0].read_only);
        assert_eq!(mounts[7].path, Path::new("/mnt/my dir"));
        assert_eq!(mounts[5].super_options, ["rw"]);
        assert_eq!(unescape("a\\134b\\9"), "a\\b\\9");
    }

    fn fake_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for dir in [
            "proc/self",
            "sys/fs/cgroup",
            "dev/pts",
            "data",
            "mnt/my dir",
            "app",
        ] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        std::fs::write(root.path().join("proc/self/environ"), "HOST=secret").unwrap();
        std::fs::write(
            root.path().join("app/m.wat"),
            "(module (func (export \"_start\")))",
        )
        .unwrap();
        std::fs::write(root.path().join("app/linux"), "\x7fELF....").unwrap();
        root
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The kernel's file systems stay out of reach, mount points keep their flags, and
    /// argv, env, cwd and the entry function are the process's.
    #[test]
    fn a_container_root_maps_without_the_kernel_file_systems() {
        let root = fake_root();
        let spec = container_root_spec(
            root.path(),
            &parse_mountinfo(MOUNTINFO),
            &args(&["m.wat#run", "x"]),
            &args(&["A=1", "B=2=3"]),
            "/app",
        )
        .unwrap();
        let guests: Vec<(&str, bool)> = spec
            .mounts
            .iter()
            .map(|m| (m.guest.as_str(), m.read_only))
            .collect();
        assert_eq!(
            guests,
            [
                ("/app", false),
                ("/data", true),
                ("/dev", false),
                ("/mnt", false),
                ("/mnt/my dir", true)
            ]
        );
        assert_eq!(spec.entry.as_deref(), Some("run"));
        assert_eq!(spec.args, args(&["m.wat#run", "x"]));
        assert_eq!(
            spec.env,
            [("A".into(), "1".into()), ("B".into(), "2=3".into())]
        );
        assert_eq!(spec.cwd, "/app");
        for preopen in spec.wasi_preopens().unwrap() {
            assert!(
                !preopen.dir.shown().starts_with(root.path().join("proc")),
                "{preopen:?}"
            );
            assert!(
                !preopen.dir.shown().starts_with(root.path().join("sys")),
                "{preopen:?}"
            );
        }
    }

    #[test]
    fn bad_container_processes_are_clear_errors() {
        let root = fake_root();
        let mounts = parse_mountinfo(MOUNTINFO);
        let map = |a: &[&str], env: &[&str], cwd: &str| {
            container_root_spec(root.path(), &mounts, &args(a), &args(env), cwd)
        };
        assert!(matches!(map(&[], &[], "/"), Err(Error::InvalidBundle(_))));
        assert!(matches!(
            map(&["/app/none.wasm"], &[], "/"),
            Err(Error::EntrypointNotFound { .. })
        ));
        assert!(matches!(
            map(&["/app"], &[], "/"),
            Err(Error::EntrypointNotFound { .. })
        ));
        assert!(matches!(
            map(&["/app/linux"], &[], "/"),
            Err(Error::NotWasm { .. })
        ));
        assert!(matches!(
            map(&["/app/m.wat"], &["NOEQUALS"], "/"),
            Err(Error::InvalidEnv { .. })
        ));
        assert!(matches!(
            map(&["m.wat"], &[], "app"),
            Err(Error::InvalidBundle(_))
        ));
    }
}
