//! `linux.cgroupsPath`: the container process joins its cgroup and the CPU and pids
//! limits are written there, on cgroup v1 (hybrid hosts included) or the unified v2
//! hierarchy, when the host lets this process do so. What cannot be applied is said in
//! the log, never claimed. Memory stays enforced inside the engine: a kernel limit would
//! also count the engine's own code and kill the process before the guest asked for
//! anything. Only the container's own (leaf) cgroup is removed again, by `delete`.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxCpu, LinuxPids, Spec};

/// Where the controllers this runtime uses are mounted.
#[derive(Debug, PartialEq, Eq)]
enum Hierarchy {
    /// One unified hierarchy.
    V2(PathBuf),
    /// A mount per controller (`None`: that controller is not mounted).
    V1 {
        cpu: Option<PathBuf>,
        pids: Option<PathBuf>,
    },
}

/// Places this process in the spec's cgroup and applies its CPU and pids limits.
/// Returns the leaf directories it made, for `delete` to remove.
pub fn place_self(spec: &Spec) -> Vec<PathBuf> {
    let linux = spec.linux().as_ref();
    let resources = linux.and_then(|l| l.resources().as_ref());
    let cpu = resources.and_then(|r| r.cpu().as_ref());
    let pids = resources.and_then(|r| r.pids().as_ref());
    let Some(path) = linux.and_then(|l| l.cgroups_path().as_ref()) else {
        if cpu.is_some_and(cpu_limited) {
            tracing::warn!("linux.resources.cpu is not enforced: the spec has no cgroupsPath");
        }
        return Vec::new();
    };
    let Some(relative) = inside_root(path) else {
        tracing::warn!(
            path = %path.display(),
            "cgroupsPath must be absolute and free of ..; the container is not placed and its cpu limits are not enforced"
        );
        return Vec::new();
    };
    let hierarchy = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| hierarchy(&m))
        .unwrap_or(Hierarchy::V1 {
            cpu: None,
            pids: None,
        });
    let mut made = Vec::new();
    let result = match &hierarchy {
        Hierarchy::V2(mount) => {
            place_v2(&mount.join(&relative), mount, cpu, pids).map(|dir| made.push(dir))
        }
        Hierarchy::V1 {
            cpu: cpu_mount,
            pids: pids_mount,
        } => {
            if cpu_mount.is_none() && cpu.is_some_and(cpu_limited) {
                tracing::warn!("no cpu cgroup controller is mounted: cpu limits are not enforced");
            }
            let mut result = Ok(());
            if let Some(mount) = cpu_mount {
                result = place_v1(&mount.join(&relative), &cpu_files_v1(cpu)).map(|d| made.push(d));
            }
            if let (Ok(()), Some(mount)) = (&result, pids_mount) {
                result = place_v1(&mount.join(&relative), &pids_files(pids)).map(|d| made.push(d));
            }
            result
        }
    };
    if let Err(e) = result {
        tracing::warn!(
            path = %path.display(),
            error = %e,
            "could not place the container in its cgroup: its cpu limits are not enforced"
        );
    }
    made
}

/// How long `remove` waits for the exited process to leave its cgroup: on v1 a zombie
/// keeps the cgroup busy until its reaper (conmon, the shim) has collected it.
const REAP_GRACE: Duration = Duration::from_secs(5);

/// Removes the leaf cgroups `place_self` made (the process has exited by then). Only
/// directories of a cgroup file system are touched, whatever a record says.
pub fn remove(dirs: &[PathBuf]) {
    for dir in dirs {
        if !is_cgroup_dir(dir) {
            tracing::warn!(dir = %dir.display(), "not removed: not a directory of a cgroup file system");
            continue;
        }
        let until = Instant::now() + REAP_GRACE;
        loop {
            match std::fs::remove_dir(dir) {
                Err(e) if e.kind() == ErrorKind::ResourceBusy && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove the container's cgroup");
                    break;
                }
                _ => break,
            }
        }
    }
}

/// Whether `dir` is an absolute path free of `..` to a directory on cgroup v1 or v2.
fn is_cgroup_dir(dir: &Path) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    if inside_root(dir).is_none() {
        return false;
    }
    let Ok(fd) = rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW,
        rustix::fs::Mode::empty(),
    ) else {
        return false;
    };
    rustix::fs::fstatfs(&fd).is_ok_and(|fs| {
        // f_type's width differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        let magic = fs.f_type as i64;
        magic == CGROUP_SUPER_MAGIC || magic == CGROUP2_SUPER_MAGIC
    })
}

fn cpu_limited(cpu: &LinuxCpu) -> bool {
    cpu.shares().is_some() || cpu.quota().is_some()
}

/// `path` relative to the hierarchy's root, if it is absolute and has no `..`.
fn inside_root(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => relative.push(name),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!relative.as_os_str().is_empty()).then_some(relative)
}

/// The cgroup hierarchy from `/proc/self/mountinfo`: v1 controller mounts win (a hybrid
/// host's cgroup2 mount has no controllers), else the unified mount.
fn hierarchy(mountinfo: &str) -> Hierarchy {
    let (mut cpu, mut pids, mut unified) = (None, None, None);
    for mount in wasmux::parse_mountinfo(mountinfo) {
        match mount.fstype.as_str() {
            "cgroup" => {
                for option in &mount.super_options {
                    match option.as_str() {
                        "cpu" => cpu = Some(mount.path.clone()),
                        "pids" => pids = Some(mount.path.clone()),
                        _ => {}
                    }
                }
            }
            "cgroup2" => unified = Some(mount.path),
            _ => {}
        }
    }
    match unified {
        Some(mount) if cpu.is_none() && pids.is_none() => Hierarchy::V2(mount),
        _ => Hierarchy::V1 { cpu, pids },
    }
}

type Files = Vec<(&'static str, String)>;

fn cpu_files_v1(cpu: Option<&LinuxCpu>) -> Files {
    let mut files = Vec::new();
    if let Some(cpu) = cpu {
        if let Some(shares) = cpu.shares() {
            files.push(("cpu.shares", shares.to_string()));
        }
        if let Some(period) = cpu.period() {
            files.push(("cpu.cfs_period_us", period.to_string()));
        }
        if let Some(quota) = cpu.quota() {
            files.push(("cpu.cfs_quota_us", quota.to_string()));
        }
    }
    files
}

fn pids_files(pids: Option<&LinuxPids>) -> Files {
    match pids.map(|p| p.limit()) {
        Some(limit) if limit > 0 => vec![("pids.max", limit.to_string())],
        Some(_) => vec![("pids.max", "max".into())],
        None => Vec::new(),
    }
}

/// v2's files: `cpu.max` ("QUOTA PERIOD"), `cpu.weight` (shares mapped the way runc
/// maps them), `pids.max`.
fn files_v2(cpu: Option<&LinuxCpu>, pids: Option<&LinuxPids>) -> Files {
    let mut files = pids_files(pids);
    if let Some(cpu) = cpu {
        if let Some(shares) = cpu.shares().filter(|&s| s > 0) {
            let weight = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
            files.push(("cpu.weight", weight.to_string()));
        }
        if cpu.quota().is_some() || cpu.period().is_some() {
            let quota = cpu
                .quota()
                .filter(|&q| q > 0)
                .map_or("max".to_owned(), |q| q.to_string());
            files.push((
                "cpu.max",
                format!("{quota} {}", cpu.period().unwrap_or(100_000)),
            ));
        }
    }
    files
}

/// Makes `dir`, writes `files`, then moves this process in (limits first, so the
/// process never runs unlimited inside its own cgroup).
fn place_v1(dir: &Path, files: &Files) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    join(dir, files)
}

fn place_v2(
    dir: &Path,
    mount: &Path,
    cpu: Option<&LinuxCpu>,
    pids: Option<&LinuxPids>,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    // Each ancestor must hand the controllers down to its children.
    let mut ancestor = mount.to_owned();
    for component in dir.strip_prefix(mount).unwrap_or(dir).components() {
        let _ = std::fs::write(ancestor.join("cgroup.subtree_control"), "+cpu +pids");
        ancestor.push(component);
    }
    join(dir, &files_v2(cpu, pids))
}

fn join(dir: &Path, files: &Files) -> std::io::Result<PathBuf> {
    for (name, value) in files {
        std::fs::write(dir.join(name), value)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{name}: {e}")))?;
    }
    std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string())?;
    Ok(dir.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_hosts_use_v1_and_unified_ones_v2() {
        assert_eq!(
            hierarchy(HYBRID),
            Hierarchy::V1 {
                cpu: Some("/sys/fs/cgroup/cpu,cpuacct".into()),
                pids: Some("/sys/fs/cgroup/pids".into()),
            }
        );
        let unified = "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(hierarchy(unified), Hierarchy::V2("/sys/fs/cgroup".into()));
    }

    #[test]
    fn cgroup_paths_stay_inside_the_hierarchy() {
        assert_eq!(inside_root(Path::new("/a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(inside_root(Path::new("/a/../../etc")), None);
        assert_eq!(inside_root(Path::new("relative")), None);
        assert_eq!(inside_root(Path::new("/")), None);
    }

    #[test]
    fn v2_maps_quota_period_and_shares_like_runc() {
        let cpu = oci_spec::runtime::LinuxCpuBuilder::default()
            .shares(1024u64)
            .quota(50_000i64)
            .period(100_000u64)
            .build()
            .unwrap();
        let files = files_v2(Some(&cpu), None);
        assert!(
            files.contains(&("cpu.max", "50000 100000".into())),
            "{files:?}"
        );
        assert!(files.contains(&("cpu.weight", "39".into())), "{files:?}");
    }
}
