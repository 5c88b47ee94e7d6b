//! The sandbox, checked call by call against a plain byte slice as guest memory.

use std::sync::Arc;

use wasmux_core::{Preopen, RunSpec, WasmBinary, WasmKind};

use super::*;

const ESUCCESS: i32 = 0;
const EPERM: i32 = 63;
const ENOTCAPABLE: i32 = 76;
const OFLAGS_CREAT: u64 = 1;
const ALL_RIGHTS: u64 = u64::MAX >> 35;
/// Guest memory layout of these tests: the path at `PATH`, the opened fd at `OUT`.
const PATH: usize = 64;
const OUT: usize = 512;

fn index(name: &str) -> usize {
    FUNCTIONS
        .iter()
        .position(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the table"))
}

/// A host with the given directory preopened at `/data`.
fn host(dir: &std::path::Path, read_only: bool) -> WasiHost {
    let wasm = WasmBinary {
        bytes: Arc::from(&b"\0asm\x01\0\0\0"[..]),
        kind: WasmKind::CoreModule,
        origin: "test.wasm".into(),
    };
    let mut spec = RunSpec::new(wasm);
    spec.mounts.push(Preopen {
        host: dir.to_owned(),
        guest: "/data".into(),
        read_only,
    });
    WasiHost::new(&mut spec, &wasmux_core::RunControl::new()).unwrap()
}

/// `path_open` relative to the preopen (fd 3), following symlinks, returning the errno.
fn open(host: &mut WasiHost, path: &str, oflags: u64, rights: u64) -> i32 {
    let mut memory = vec![0u8; 4096];
    memory[PATH..PATH + path.len()].copy_from_slice(path.as_bytes());
    let follow_symlinks = 1;
    let args = [
        3,
        follow_symlinks,
        PATH as u64,
        path.len() as u64,
        oflags,
        rights,
        rights,
        0,
        OUT as u64,
    ];
    host.call(index("path_open"), &mut memory, &args).unwrap()
}

#[test]
fn the_table_covers_preview1_and_each_name_once() {
    assert_eq!(FUNCTIONS.len(), 46);
    let mut names: Vec<_> = FUNCTIONS.iter().map(|f| f.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 46);
    assert_eq!(FUNCTIONS[index("path_open")].params.len(), 9);
}

#[test]
fn a_read_only_preopen_refuses_create_and_write_but_reads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kept.txt"), "kept").unwrap();
    let mut host = host(dir.path(), true);
    assert_eq!(open(&mut host, "new.txt", OFLAGS_CREAT, ALL_RIGHTS), EPERM);
    assert_eq!(open(&mut host, "kept.txt", 0, ALL_RIGHTS), EPERM);
    assert!(!dir.path().join("new.txt").exists());
    let read_only_rights = 2; // fd_read
    assert_eq!(open(&mut host, "kept.txt", 0, read_only_rights), ESUCCESS);
}

#[test]
fn a_writable_preopen_creates() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = host(dir.path(), false);
    assert_eq!(
        open(&mut host, "new.txt", OFLAGS_CREAT, ALL_RIGHTS),
        ESUCCESS
    );
    assert!(dir.path().join("new.txt").exists());
}

#[test]
fn paths_out_of_the_preopen_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("secret"), "secret").unwrap();
    let inner = outer.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::os::unix::fs::symlink("../secret", inner.join("link")).unwrap();
    let mut host = host(&inner, false);
    for path in ["../secret", "/secret", "link", "./../inner/../secret"] {
        let errno = open(&mut host, path, 0, 2);
        assert!(
            errno == EPERM || errno == ENOTCAPABLE,
            "{path}: errno {errno}"
        );
    }
}

#[test]
fn proc_exit_keeps_every_bit_of_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = host(dir.path(), true);
    let mut memory = vec![0u8; 64];
    let status = host.call(index("proc_exit"), &mut memory, &[0xffff_fffe]);
    assert_eq!(status, Err(Stop::Exit(0xffff_fffe)));
}

#[test]
fn a_pointer_out_of_guest_memory_traps_instead_of_touching_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = host(dir.path(), true);
    let mut memory = vec![0u8; 64];
    let result = host.call(index("args_sizes_get"), &mut memory, &[1 << 20, 0]);
    assert!(matches!(result, Err(Stop::Trap(_))), "{result:?}");
}

/// Image layers can carry device nodes and volumes FIFOs: only the harmless default
/// devices may be opened, and a FIFO is refused without blocking on it.
#[test]
fn device_nodes_and_fifos_are_refused_and_the_default_devices_open() {
    use rustix::fs::{CWD, FileType, Mode, makedev, mknodat};
    const EACCES: i32 = 2;
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str, kind: FileType, dev: u64| {
        mknodat(
            CWD,
            dir.path().join(name),
            kind,
            Mode::from_raw_mode(0o666),
            dev,
        )
    };
    node("fifo", FileType::Fifo, 0).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("../fifo", dir.path().join("sub/link")).unwrap();
    // The audit's nodes: the kernel log and a raw disk. Creating them needs CAP_MKNOD,
    // which the tests have (they run as root, as CI does).
    node("kmsg", FileType::CharacterDevice, makedev(1, 11))
        .expect("creating a device node: run the tests as root");
    node("disk", FileType::BlockDevice, makedev(7, 0)).unwrap();
    node("null", FileType::CharacterDevice, makedev(1, 3)).unwrap();
    let mut host = host(dir.path(), false);
    for path in ["fifo", "sub/link", "kmsg", "disk"] {
        for rights in [2, ALL_RIGHTS] {
            assert_eq!(open(&mut host, path, 0, rights), EACCES, "{path}");
        }
    }
    assert_eq!(open(&mut host, "null", 0, ALL_RIGHTS), ESUCCESS);
    assert_eq!(open(&mut host, "sub", 0, 2), ESUCCESS);
}
