use std::os::unix::fs::symlink;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

type Open = fn(BorrowedFd<'_>, &Path, OFlags) -> io::Result<OwnedFd>;

/// Both resolvers: openat2 where the kernel has it, and the component walk.
const RESOLVERS: [(&str, Open); 2] = [("openat2", open_in_root), ("walk", walk_in_root)];

fn same_file(fd: &OwnedFd, path: &Path) -> bool {
    let a = rustix::fs::fstat(fd).unwrap();
    let b = rustix::fs::stat(path).unwrap();
    (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
}

#[test]
fn stays_inside_root_through_dotdot_and_symlinks() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/lib")).unwrap();
    std::fs::write(r.join("usr/lib/app.wasm"), b"x").unwrap();
    symlink("/usr/lib", r.join("lib")).unwrap();
    symlink("../../../../usr/lib/app.wasm", r.join("rel.wasm")).unwrap();
    symlink("/etc", r.join("etc")).unwrap();
    let dir = HostDir::open(r).unwrap();
    let want = r.join("usr/lib/app.wasm");
    for (name, open) in RESOLVERS {
        for path in [
            "/lib/app.wasm",
            "/rel.wasm",
            "/../../usr/lib/app.wasm",
            "usr/./lib/../lib/app.wasm",
        ] {
            let fd = open(dir.as_fd(), Path::new(path), OFlags::PATH)
                .unwrap_or_else(|e| panic!("{name} {path}: {e}"));
            assert!(same_file(&fd, &want), "{name} {path}");
        }
        // `/etc` inside the root is a link to the host's /etc: it resolves to root/etc.
        assert!(open(dir.as_fd(), Path::new("/etc/hostname"), OFlags::PATH).is_err());
        let top = open(dir.as_fd(), Path::new("/usr/.."), OFlags::PATH).unwrap();
        assert!(same_file(&top, r), "{name}");
    }
}

#[test]
fn symlink_loops_end_in_an_error() {
    let root = tempfile::tempdir().unwrap();
    symlink("/b", root.path().join("a")).unwrap();
    symlink("/a", root.path().join("b")).unwrap();
    let dir = HostDir::open(root.path()).unwrap();
    for (name, open) in RESOLVERS {
        assert!(
            open(dir.as_fd(), Path::new("/a"), OFlags::PATH).is_err(),
            "{name}"
        );
    }
}

/// The attack the audit made: a relative symlink leading out of the root is swapped
/// with a directory on the victim's path while the victim resolves it. Every answer must
/// be a directory inside the root.
#[test]
fn a_symlink_swapped_in_during_resolution_never_leads_out() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("rootfs");
    std::fs::create_dir_all(root.join("vol/w/deep")).unwrap();
    std::fs::write(outer.path().join("host-secret"), "host").unwrap();
    // Relative, and inside at creation time if placed deeper; here it leads to `outer`.
    symlink("../..", root.join("vol/w_link")).unwrap();
    let dir = HostDir::open(&root).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let (stop, vol) = (stop.clone(), root.join("vol"));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    vol.join("w"),
                    rustix::fs::CWD,
                    vol.join("w_link"),
                    rustix::fs::RenameFlags::EXCHANGE,
                );
                swaps += 1;
            }
            swaps
        })
    };
    for (name, open) in RESOLVERS {
        for _ in 0..2000 {
            let Ok(fd) = open(dir.as_fd(), Path::new("/vol/w"), dir_flags()) else {
                continue;
            };
            let escaped = rustix::fs::statat(&fd, "host-secret", rustix::fs::AtFlags::empty());
            assert!(escaped.is_err(), "{name}: the resolution left the root");
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(attacker.join().unwrap() > 0);
}

#[test]
fn a_module_must_be_a_regular_file_of_bounded_size() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::write(r.join("m.wasm"), b"\0asm\x01\0\0\0").unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    std::fs::create_dir(r.join("dir")).unwrap();
    symlink("/dev/zero", r.join("zero")).unwrap();
    let dir = HostDir::open(r).unwrap();
    assert_eq!(
        dir.read_module(Path::new("/m.wasm")).unwrap(),
        b"\0asm\x01\0\0\0"
    );
    // A FIFO would block the read for ever; it is refused without being opened.
    let fifo = dir.read_module(Path::new("/fifo")).unwrap_err();
    assert!(fifo.to_string().contains("FIFO"), "{fifo}");
    let is_dir = dir.read_module(Path::new("/dir")).unwrap_err();
    assert!(is_dir.to_string().contains("directory"), "{is_dir}");
    // The link resolves inside the root, where there is no /dev/zero.
    assert!(dir.read_module(Path::new("/zero")).is_err());
    // The host's /dev/zero itself, as a root that holds it: a device, never read.
    let dev = HostDir::open(Path::new("/dev")).unwrap();
    let zero = dev.read_module(Path::new("zero")).unwrap_err();
    assert!(zero.to_string().contains("character device"), "{zero}");
    // A sparse file over the limit is refused by its size.
    let big = std::fs::File::create(r.join("big.wasm")).unwrap();
    big.set_len(MAX_MODULE_BYTES + 1).unwrap();
    let refused = dir.read_module(Path::new("/big.wasm")).unwrap_err();
    assert!(refused.to_string().contains("MiB"), "{refused}");
}

#[test]
fn only_the_default_devices_may_be_opened() {
    let stat = |path: &str| rustix::fs::stat(path).unwrap();
    for harmless in ["/dev/null", "/dev/zero", "/dev/full", "/dev/urandom"] {
        assert!(guest_may_open(&stat(harmless)), "{harmless}");
    }
    assert!(guest_may_open(&stat("/")));
    let root = tempfile::tempdir().unwrap();
    let fifo = root.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert!(!guest_may_open(&rustix::fs::stat(&fifo).unwrap()));
    if Path::new("/dev/kmsg").exists() {
        assert!(!guest_may_open(&stat("/dev/kmsg")));
    }
}
