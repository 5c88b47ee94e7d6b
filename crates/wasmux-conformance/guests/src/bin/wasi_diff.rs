//! The WASI differential guest: `wasi_diff SCENARIO` calls WASI preview1 functions
//! directly (the imports libc and Rust std are built on), with the arguments and edge
//! cases real programs hit, and prints a canonical transcript: one line per call, its
//! arguments and its errno or result. The host runs it on every engine against a fresh
//! copy of one fixture tree and compares transcripts (and the tree left behind) with
//! wasmtime's.
//!
//! The guest expects two preopens: `/` (the fixture tree, writable) and `/ro` (a
//! read-only mount). Descriptor numbers are engine choices, so they are never printed;
//! times and inode numbers neither.

#![allow(clippy::missing_safety_doc)]

use std::fmt::Write as _;

mod sys {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        pub fn args_sizes_get(argc: *mut u32, size: *mut u32) -> u32;
        pub fn environ_sizes_get(count: *mut u32, size: *mut u32) -> u32;
        pub fn clock_res_get(id: u32, res: *mut u64) -> u32;
        pub fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u32;
        pub fn fd_advise(fd: u32, offset: u64, len: u64, advice: u32) -> u32;
        pub fn fd_allocate(fd: u32, offset: u64, len: u64) -> u32;
        pub fn fd_close(fd: u32) -> u32;
        pub fn fd_datasync(fd: u32) -> u32;
        pub fn fd_fdstat_get(fd: u32, stat: *mut u8) -> u32;
        pub fn fd_fdstat_set_flags(fd: u32, flags: u32) -> u32;
        pub fn fd_fdstat_set_rights(fd: u32, base: u64, inheriting: u64) -> u32;
        pub fn fd_filestat_get(fd: u32, stat: *mut u8) -> u32;
        pub fn fd_filestat_set_size(fd: u32, size: u64) -> u32;
        pub fn fd_filestat_set_times(fd: u32, atim: u64, mtim: u64, flags: u32) -> u32;
        pub fn fd_pread(fd: u32, iovs: *const u32, n: u32, offset: u64, nread: *mut u32) -> u32;
        pub fn fd_prestat_get(fd: u32, prestat: *mut u32) -> u32;
        pub fn fd_prestat_dir_name(fd: u32, path: *mut u8, len: u32) -> u32;
        pub fn fd_pwrite(fd: u32, iovs: *const u32, n: u32, offset: u64, nw: *mut u32) -> u32;
        pub fn fd_read(fd: u32, iovs: *const u32, n: u32, nread: *mut u32) -> u32;
        pub fn fd_readdir(fd: u32, buf: *mut u8, len: u32, cookie: u64, used: *mut u32) -> u32;
        pub fn fd_renumber(fd: u32, to: u32) -> u32;
        pub fn fd_seek(fd: u32, offset: i64, whence: u32, new: *mut u64) -> u32;
        pub fn fd_sync(fd: u32) -> u32;
        pub fn fd_tell(fd: u32, offset: *mut u64) -> u32;
        pub fn fd_write(fd: u32, iovs: *const u32, n: u32, nwritten: *mut u32) -> u32;
        pub fn path_create_directory(fd: u32, path: *const u8, len: u32) -> u32;
        pub fn path_filestat_get(fd: u32, fl: u32, p: *const u8, l: u32, st: *mut u8) -> u32;
        pub fn path_filestat_set_times(
            fd: u32,
            flags: u32,
            path: *const u8,
            len: u32,
            atim: u64,
            mtim: u64,
            fst: u32,
        ) -> u32;
        pub fn path_link(
            old_fd: u32,
            old_flags: u32,
            old: *const u8,
            old_len: u32,
            new_fd: u32,
            new: *const u8,
            new_len: u32,
        ) -> u32;
        pub fn path_open(
            fd: u32,
            dirflags: u32,
            path: *const u8,
            len: u32,
            oflags: u32,
            base: u64,
            inheriting: u64,
            fdflags: u32,
            opened: *mut u32,
        ) -> u32;
        pub fn path_readlink(
            fd: u32,
            path: *const u8,
            len: u32,
            buf: *mut u8,
            buf_len: u32,
            used: *mut u32,
        ) -> u32;
        pub fn path_remove_directory(fd: u32, path: *const u8, len: u32) -> u32;
        pub fn path_rename(
            fd: u32,
            old: *const u8,
            old_len: u32,
            new_fd: u32,
            new: *const u8,
            new_len: u32,
        ) -> u32;
        pub fn path_symlink(old: *const u8, old_len: u32, fd: u32, new: *const u8, len: u32)
        -> u32;
        pub fn path_unlink_file(fd: u32, path: *const u8, len: u32) -> u32;
        pub fn poll_oneoff(input: *const u8, out: *mut u8, n: u32, nevents: *mut u32) -> u32;
        pub fn random_get(buf: *mut u8, len: u32) -> u32;
        pub fn sched_yield() -> u32;
        pub fn sock_recv(
            fd: u32,
            iovs: *const u32,
            n: u32,
            flags: u32,
            len: *mut u32,
            oflags: *mut u32,
        ) -> u32;
        pub fn sock_send(fd: u32, iovs: *const u32, n: u32, flags: u32, len: *mut u32) -> u32;
        pub fn sock_shutdown(fd: u32, how: u32) -> u32;
    }
}

const ERRNO: [&str; 77] = [
    "SUCCESS", "2BIG", "ACCES", "ADDRINUSE", "ADDRNOTAVAIL", "AFNOSUPPORT", "AGAIN", "ALREADY",
    "BADF", "BADMSG", "BUSY", "CANCELED", "CHILD", "CONNABORTED", "CONNREFUSED", "CONNRESET",
    "DEADLK", "DESTADDRREQ", "DOM", "DQUOT", "EXIST", "FAULT", "FBIG", "HOSTUNREACH", "IDRM",
    "ILSEQ", "INPROGRESS", "INTR", "INVAL", "IO", "ISCONN", "ISDIR", "LOOP", "MFILE", "MLINK",
    "MSGSIZE", "MULTIHOP", "NAMETOOLONG", "NETDOWN", "NETRESET", "NETUNREACH", "NFILE",
    "NOBUFS", "NODEV", "NOENT", "NOEXEC", "NOLCK", "NOLINK", "NOMEM", "NOMSG", "NOPROTOOPT",
    "NOSPC", "NOSYS", "NOTCONN", "NOTDIR", "NOTEMPTY", "NOTRECOVERABLE", "NOTSOCK", "NOTSUP",
    "NOTTY", "NXIO", "OVERFLOW", "OWNERDEAD", "PERM", "PIPE", "PROTO", "PROTONOSUPPORT",
    "PROTOTYPE", "RANGE", "ROFS", "SPIPE", "SRCH", "STALE", "TIMEDOUT", "TXTBSY", "XDEV",
    "NOTCAPABLE",
];

const FILETYPE: [&str; 8] = ["unknown", "block", "char", "dir", "file", "dgram", "stream", "symlink"];

// oflags, fdflags, lookupflags, whence, fstflags.
const CREAT: u32 = 1;
const DIRECTORY: u32 = 2;
const EXCL: u32 = 4;
const TRUNC: u32 = 8;
const APPEND: u32 = 1;
const DSYNC: u32 = 2;
const NONBLOCK: u32 = 4;
const SYNC: u32 = 16;
const FOLLOW: u32 = 1;
const NOFOLLOW: u32 = 0;
const SET: u32 = 0;
const CUR: u32 = 1;
const END: u32 = 2;
const ATIM: u32 = 1;
const ATIM_NOW: u32 = 2;
const MTIM: u32 = 4;

// Rights: what wasi-libc asks for (everything), and the ones a case drops.
const ALL: u64 = (1 << 30) - 1;
const FD_DATASYNC: u64 = 1 << 0;
const FD_READ: u64 = 1 << 1;
const FD_SEEK: u64 = 1 << 2;
const FD_TELL: u64 = 1 << 5;
const FD_WRITE: u64 = 1 << 6;
const FD_ALLOCATE: u64 = 1 << 8;
const FD_READDIR: u64 = 1 << 14;
const FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
/// What wasi-libc asks for on `O_RDONLY` (and so for every directory it opens).
const RDONLY: u64 = ALL & !(FD_DATASYNC | FD_WRITE | FD_ALLOCATE | FD_FILESTAT_SET_SIZE);
/// What wasi-libc asks for on `O_WRONLY`.
const WRONLY: u64 = ALL & !(FD_READ | FD_READDIR);

/// One transcript line per call: `what = RESULT`.
fn line(what: impl AsRef<str>, result: impl AsRef<str>) {
    println!("{} = {}", what.as_ref(), result.as_ref());
}

fn errno(code: u32) -> String {
    ERRNO.get(code as usize).map_or_else(|| format!("errno {code}"), |n| (*n).to_owned())
}

/// `ok` or the errno's name.
fn res(code: u32) -> String {
    if code == 0 { "ok".into() } else { errno(code) }
}

/// The calls, as safe functions over byte slices and strings.
mod call {
    use super::sys;

    fn iov(buf: &[u8]) -> [u32; 2] {
        [buf.as_ptr() as u32, buf.len() as u32]
    }

    pub fn open(dir: u32, path: &str, lookup: u32, oflags: u32, base: u64, fdflags: u32) -> Result<u32, u32> {
        let mut fd = 0;
        let rc = unsafe {
            sys::path_open(dir, lookup, path.as_ptr(), path.len() as u32, oflags, base, super::ALL, fdflags, &mut fd)
        };
        if rc == 0 { Ok(fd) } else { Err(rc) }
    }

    pub fn write(fd: u32, data: &[u8]) -> Result<u32, u32> {
        let v = iov(data);
        let mut n = 0;
        match unsafe { sys::fd_write(fd, v.as_ptr(), 1, &mut n) } {
            0 => Ok(n),
            e => Err(e),
        }
    }

    pub fn pwrite(fd: u32, data: &[u8], at: u64) -> Result<u32, u32> {
        let v = iov(data);
        let mut n = 0;
        match unsafe { sys::fd_pwrite(fd, v.as_ptr(), 1, at, &mut n) } {
            0 => Ok(n),
            e => Err(e),
        }
    }

    pub fn read(fd: u32, len: usize) -> Result<Vec<u8>, u32> {
        let mut buf = vec![0u8; len];
        let v = iov(&buf);
        let mut n = 0;
        match unsafe { sys::fd_read(fd, v.as_ptr(), 1, &mut n) } {
            0 => {
                buf.truncate(n as usize);
                Ok(buf)
            }
            e => Err(e),
        }
    }

    pub fn pread(fd: u32, len: usize, at: u64) -> Result<Vec<u8>, u32> {
        let mut buf = vec![0u8; len];
        let v = iov(&buf);
        let mut n = 0;
        match unsafe { sys::fd_pread(fd, v.as_ptr(), 1, at, &mut n) } {
            0 => {
                buf.truncate(n as usize);
                Ok(buf)
            }
            e => Err(e),
        }
    }

    pub fn seek(fd: u32, offset: i64, whence: u32) -> Result<u64, u32> {
        let mut at = 0;
        match unsafe { sys::fd_seek(fd, offset, whence, &mut at) } {
            0 => Ok(at),
            e => Err(e),
        }
    }

    pub fn tell(fd: u32) -> Result<u64, u32> {
        let mut at = 0;
        match unsafe { sys::fd_tell(fd, &mut at) } {
            0 => Ok(at),
            e => Err(e),
        }
    }

    /// (filetype, flags, rights_base).
    pub fn fdstat(fd: u32) -> Result<(u8, u16, u64), u32> {
        let mut buf = [0u64; 3];
        match unsafe { sys::fd_fdstat_get(fd, buf.as_mut_ptr().cast()) } {
            0 => {
                let bytes = buf[0].to_le_bytes();
                Ok((bytes[0], u16::from_le_bytes([bytes[2], bytes[3]]), buf[1]))
            }
            e => Err(e),
        }
    }

    /// (filetype, nlink, size, mtim).
    pub fn filestat(fd: u32) -> Result<(u8, u64, u64, u64), u32> {
        let mut buf = [0u64; 8];
        match unsafe { sys::fd_filestat_get(fd, buf.as_mut_ptr().cast()) } {
            0 => Ok((buf[2] as u8, buf[3], buf[4], buf[6])),
            e => Err(e),
        }
    }

    pub fn path_filestat(dir: u32, flags: u32, path: &str) -> Result<(u8, u64, u64, u64), u32> {
        let mut buf = [0u64; 8];
        match unsafe { sys::path_filestat_get(dir, flags, path.as_ptr(), path.len() as u32, buf.as_mut_ptr().cast()) } {
            0 => Ok((buf[2] as u8, buf[3], buf[4], buf[6])),
            e => Err(e),
        }
    }

    pub fn readlink(dir: u32, path: &str, cap: usize) -> Result<String, u32> {
        let mut buf = vec![0u8; cap];
        let mut used = 0;
        match unsafe { sys::path_readlink(dir, path.as_ptr(), path.len() as u32, buf.as_mut_ptr(), cap as u32, &mut used) } {
            0 => Ok(String::from_utf8_lossy(&buf[..used as usize]).into_owned()),
            e => Err(e),
        }
    }

    /// Every entry name, reading with a `chunk`-byte buffer and the cookies it returns.
    pub fn readdir(fd: u32, chunk: usize) -> Result<Vec<(String, u8)>, u32> {
        let mut names = Vec::new();
        let mut cookie = 0u64;
        let mut buf = vec![0u8; chunk];
        loop {
            let mut used = 0;
            let rc = unsafe { sys::fd_readdir(fd, buf.as_mut_ptr(), chunk as u32, cookie, &mut used) };
            if rc != 0 {
                return Err(rc);
            }
            let used = used as usize;
            let mut at = 0;
            let mut whole = 0;
            while at + 24 <= used {
                let next = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
                let len = u32::from_le_bytes(buf[at + 16..at + 20].try_into().unwrap()) as usize;
                let kind = buf[at + 20];
                if at + 24 + len > used {
                    break; // truncated name: read again from this entry's cookie
                }
                names.push((String::from_utf8_lossy(&buf[at + 24..at + 24 + len]).into_owned(), kind));
                cookie = next;
                at += 24 + len;
                whole += 1;
            }
            if used < chunk {
                return Ok(names);
            }
            if whole == 0 {
                // Not even one entry fits: a bigger buffer.
                buf.resize(buf.len() * 2, 0);
            }
        }
    }
}

/// The preopens, by name: (fd, name).
fn preopens() -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for fd in 3..64 {
        let mut prestat = [0u32; 2];
        if unsafe { sys::fd_prestat_get(fd, prestat.as_mut_ptr()) } != 0 {
            continue;
        }
        let mut name = vec![0u8; prestat[1] as usize];
        unsafe { sys::fd_prestat_dir_name(fd, name.as_mut_ptr(), name.len() as u32) };
        found.push((fd, String::from_utf8_lossy(&name).trim_end_matches('\0').to_owned()));
    }
    found
}

fn preopen(name: &str) -> u32 {
    let all = preopens();
    all.iter()
        .find(|(_, n)| n == name)
        .map(|(fd, _)| *fd)
        .unwrap_or_else(|| panic!("no preopen {name} among {all:?}"))
}

fn ftype(t: u8) -> &'static str {
    FILETYPE.get(t as usize).copied().unwrap_or("?")
}

fn show<T>(r: Result<T, u32>, f: impl FnOnce(T) -> String) -> String {
    match r {
        Ok(v) => f(v),
        Err(e) => errno(e),
    }
}

fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    let root = preopen("/");
    let ro = preopen("/ro");
    match scenario.as_str() {
        "preopens" => preopens_scenario(),
        "stdio" => stdio(),
        "open" => open(root),
        "readwrite" => readwrite(root),
        "append" => append(root),
        "dirs" => dirs(root),
        "readdir" => readdir(root),
        "rename" => rename(root),
        "symlinks" => symlinks(root),
        "links" => links(root),
        "times" => times(root),
        "escape" => escape(root),
        "readonly" => readonly(ro),
        "fds" => fds(root),
        "misc" => misc(root),
        "std" => std_fs(),
        "flags" => flags(root),
        other => panic!("unknown scenario {other:?}"),
    }
}

fn preopens_scenario() {
    let mut names: Vec<String> = preopens().into_iter().map(|(_, n)| n).collect();
    names.sort();
    line("preopen names", names.join(" "));
    for (fd, name) in preopens() {
        line(format!("fd_fdstat_get({name}) type"), show(call::fdstat(fd), |(t, _, _)| ftype(t).into()));
        line(format!("fd_filestat_get({name}) type"), show(call::filestat(fd), |(t, ..)| ftype(t).into()));
    }
    let mut prestat = [0u32; 2];
    line("fd_prestat_get(stdout)", res(unsafe { sys::fd_prestat_get(1, prestat.as_mut_ptr()) }));
    line("fd_prestat_get(1000)", res(unsafe { sys::fd_prestat_get(1000, prestat.as_mut_ptr()) }));
}

fn stdio() {
    for fd in 0..3 {
        line(
            format!("fd_fdstat_get({fd})"),
            show(call::fdstat(fd), |(t, _, rights)| {
                // isatty: a character device without seek or tell rights.
                let tty = t == 2 && rights & (FD_SEEK | FD_TELL) == 0;
                format!("{} tty={tty}", ftype(t))
            }),
        );
    }
    line("fd_write(1)", show(call::write(1, b"out\n"), |n| n.to_string()));
    line("fd_fdstat_get(99)", show(call::fdstat(99), |_| "?".into()));
}

fn open(root: u32) {
    let try_open = |what: &str, path: &str, lookup: u32, oflags: u32, base: u64, fdflags: u32| {
        let r = call::open(root, path, lookup, oflags, base, fdflags);
        line(format!("path_open({path:?}, {what})"), show(r, |fd| {
            let t = call::fdstat(fd).map(|(t, ..)| ftype(t)).unwrap_or("?");
            unsafe { sys::fd_close(fd) };
            format!("ok {t}")
        }));
    };
    try_open("read", "file.txt", FOLLOW, 0, ALL, 0);
    try_open("read+write", "file.txt", FOLLOW, 0, FD_READ | FD_WRITE, 0);
    try_open("missing", "missing.txt", FOLLOW, 0, ALL, 0);
    try_open("creat", "new.txt", FOLLOW, CREAT, ALL, 0);
    try_open("creat|excl existing", "file.txt", FOLLOW, CREAT | EXCL, ALL, 0);
    try_open("creat existing", "file.txt", FOLLOW, CREAT, ALL, 0);
    try_open("directory on file", "file.txt", FOLLOW, DIRECTORY, ALL, 0);
    try_open("directory", "dir", FOLLOW, DIRECTORY, RDONLY, 0);
    try_open("directory, write rights", "dir", FOLLOW, DIRECTORY, ALL, 0);
    try_open("dir plain", "dir", FOLLOW, 0, RDONLY, 0);
    try_open("dot", ".", FOLLOW, DIRECTORY, RDONLY, 0);
    try_open("trailing slash on file", "file.txt/", FOLLOW, 0, ALL, 0);
    try_open("trailing slash on dir", "dir/", FOLLOW, 0, RDONLY, 0);
    try_open("creat trailing slash", "newdir/", FOLLOW, CREAT, ALL, 0);
    try_open("nonblock", "file.txt", FOLLOW, 0, ALL, NONBLOCK);
    try_open("trunc", "dir/inner.txt", FOLLOW, TRUNC, ALL, 0);
    try_open("inside subdir", "dir/sub/../inner.txt", FOLLOW, 0, ALL, 0);
    try_open("empty path", "", FOLLOW, 0, ALL, 0);
    try_open("nul in path", "file\0.txt", FOLLOW, 0, ALL, 0);
    try_open("file under file", "file.txt/x", FOLLOW, 0, ALL, 0);
    // The directory fd is a file.
    let file = call::open(root, "file.txt", FOLLOW, 0, ALL, 0).unwrap();
    line("path_open(dirfd=file, \"x\")", show(call::open(file, "x", FOLLOW, 0, ALL, 0), |_| "ok".into()));
    unsafe { sys::fd_close(file) };
    line("path_open(dirfd=99, \"x\")", show(call::open(99, "x", FOLLOW, 0, ALL, 0), |_| "ok".into()));
    // Write on a read-only open, read on a write-only open.
    let r = call::open(root, "file.txt", FOLLOW, 0, FD_READ | FD_SEEK | FD_TELL, 0).unwrap();
    line("fd_write(read-only fd)", show(call::write(r, b"x"), |n| n.to_string()));
    unsafe { sys::fd_close(r) };
    let w = call::open(root, "file.txt", FOLLOW, 0, FD_WRITE, 0).unwrap();
    line("fd_read(write-only fd)", show(call::read(w, 4), |b| format!("{b:?}")));
    unsafe { sys::fd_close(w) };
}

fn readwrite(root: u32) {
    let fd = call::open(root, "rw.txt", FOLLOW, CREAT, ALL, 0).unwrap();
    line("fd_write(hello world)", show(call::write(fd, b"hello world"), |n| n.to_string()));
    line("fd_tell", show(call::tell(fd), |n| n.to_string()));
    line("fd_seek(0, SET)", show(call::seek(fd, 0, SET), |n| n.to_string()));
    line("fd_read(5)", show(call::read(fd, 5), |b| format!("{:?}", String::from_utf8_lossy(&b))));
    line("fd_seek(1, CUR)", show(call::seek(fd, 1, CUR), |n| n.to_string()));
    line("fd_read(100)", show(call::read(fd, 100), |b| format!("{:?}", String::from_utf8_lossy(&b))));
    line("fd_read(at eof)", show(call::read(fd, 100), |b| format!("{} bytes", b.len())));
    line("fd_seek(-3, END)", show(call::seek(fd, -3, END), |n| n.to_string()));
    line("fd_seek(-100, CUR)", show(call::seek(fd, -100, CUR), |n| n.to_string()));
    line("fd_seek(20, SET) past end", show(call::seek(fd, 20, SET), |n| n.to_string()));
    line("fd_write(!) past end", show(call::write(fd, b"!"), |n| n.to_string()));
    line("fd_filestat_get size", show(call::filestat(fd), |(t, nlink, size, _)| format!("{} nlink={nlink} size={size}", ftype(t))));
    line("fd_pread(5, at 6)", show(call::pread(fd, 5, 6), |b| format!("{:?}", String::from_utf8_lossy(&b))));
    line("fd_pread(5, at 100)", show(call::pread(fd, 5, 100), |b| format!("{} bytes", b.len())));
    line("fd_pwrite(HELLO, at 0)", show(call::pwrite(fd, b"HELLO", 0), |n| n.to_string()));
    line("fd_tell after pwrite", show(call::tell(fd), |n| n.to_string()));
    line("fd_filestat_set_size(4)", res(unsafe { sys::fd_filestat_set_size(fd, 4) }));
    line("fd_filestat_get after truncate", show(call::filestat(fd), |(_, _, size, _)| format!("size={size}")));
    line("fd_allocate(0, 100)", res(unsafe { sys::fd_allocate(fd, 0, 100) }));
    line("fd_advise(0, 10, NORMAL)", res(unsafe { sys::fd_advise(fd, 0, 10, 0) }));
    line("fd_sync", res(unsafe { sys::fd_sync(fd) }));
    line("fd_datasync", res(unsafe { sys::fd_datasync(fd) }));
    unsafe { sys::fd_close(fd) };
    let dir = call::open(root, "dir", FOLLOW, DIRECTORY, RDONLY, 0).unwrap();
    line("fd_seek(dir)", show(call::seek(dir, 0, CUR), |n| n.to_string()));
    line("fd_tell(dir)", show(call::tell(dir), |n| n.to_string()));
    line("fd_read(dir)", show(call::read(dir, 4), |b| format!("{} bytes", b.len())));
    line("fd_write(dir)", show(call::write(dir, b"x"), |n| n.to_string()));
    line("fd_filestat_set_size(dir)", res(unsafe { sys::fd_filestat_set_size(dir, 0) }));
    unsafe { sys::fd_close(dir) };
}

fn append(root: u32) {
    let fd = call::open(root, "file.txt", FOLLOW, 0, FD_WRITE | FD_SEEK | FD_TELL, APPEND).unwrap();
    line("fd_fdstat_get flags", show(call::fdstat(fd), |(_, flags, _)| format!("append={}", flags & APPEND as u16 != 0)));
    line("fd_seek(0, SET)", show(call::seek(fd, 0, SET), |n| n.to_string()));
    line("fd_write(A) appends", show(call::write(fd, b"A"), |n| n.to_string()));
    line("fd_tell", show(call::tell(fd), |n| n.to_string()));
    line("fd_pwrite(B, at 0) on append", show(call::pwrite(fd, b"B", 0), |n| n.to_string()));
    unsafe { sys::fd_close(fd) };
    // O_WRONLY|O_APPEND as wasi-libc opens it (rights without seek), then pwrite.
    let w = call::open(root, "empty.txt", FOLLOW, 0, FD_WRITE, APPEND);
    line("path_open(write-only append)", show(w, |_| "ok".into()));
    if let Ok(w) = w {
        line("fd_pwrite(x, at 0) write-only append", show(call::pwrite(w, b"x", 0), |n| n.to_string()));
        line("fd_write(y)", show(call::write(w, b"y"), |n| n.to_string()));
        unsafe { sys::fd_close(w) };
    }
    // open("file.txt", O_WRONLY | O_APPEND) exactly as wasi-libc makes it, then pwrite.
    let w = call::open(root, "file.txt", FOLLOW, 0, WRONLY, APPEND);
    line("path_open(O_WRONLY|O_APPEND as libc)", show(w, |_| "ok".into()));
    if let Ok(w) = w {
        line("fd_pwrite(z, at 1)", show(call::pwrite(w, b"z", 1), |n| n.to_string()));
        unsafe { sys::fd_close(w) };
    }
    // open(p, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND) exactly as wasi-libc makes it, on an
    // existing file and a new one: truncated, then every write at the end.
    for path in ["file.txt", "new-append.txt"] {
        let w = call::open(root, path, FOLLOW, CREAT | TRUNC, WRONLY, APPEND);
        line(format!("path_open({path:?}, O_CREAT|O_TRUNC|O_WRONLY|O_APPEND as libc)"), show(w, |_| "ok".into()));
        if let Ok(w) = w {
            line("fd_fdstat_get flags", show(call::fdstat(w), |(_, flags, _)| format!("append={}", flags & APPEND as u16 != 0)));
            line("fd_write(ab)", show(call::write(w, b"ab"), |n| n.to_string()));
            line("fd_pwrite(c, at 0)", show(call::pwrite(w, b"c", 0), |n| n.to_string()));
            line("fd_write(d)", show(call::write(w, b"d"), |n| n.to_string()));
            unsafe { sys::fd_close(w) };
        }
    }
    let fd = call::open(root, "dir/inner.txt", FOLLOW, 0, ALL, 0).unwrap();
    line("fd_fdstat_set_flags(APPEND)", res(unsafe { sys::fd_fdstat_set_flags(fd, APPEND) }));
    line("fd_write(+) after set_flags", show(call::write(fd, b"+"), |n| n.to_string()));
    line("fd_fdstat_set_flags(NONBLOCK)", res(unsafe { sys::fd_fdstat_set_flags(fd, NONBLOCK) }));
    unsafe { sys::fd_close(fd) };
}

/// The cross product of what wasi-libc's `open`/`openat` and Rust std's `OpenOptions`
/// send to `path_open`: the access mode as rights (as wasi-libc computes them),
/// `O_CREAT`/`O_EXCL`/`O_TRUNC`/`O_DIRECTORY` as oflags, `O_APPEND`/`O_NONBLOCK`/
/// `O_SYNC`/`O_DSYNC` as fdflags; on an existing file, a missing one and a directory,
/// each from the same state; then what a program does next with the descriptor.
fn flags(root: u32) {
    const MODES: [(&str, u64); 3] = [("O_RDONLY", RDONLY), ("O_WRONLY", WRONLY), ("O_RDWR", ALL)];
    const OFLAGS: [(&str, u32); 4] =
        [("CREAT", CREAT), ("EXCL", EXCL), ("TRUNC", TRUNC), ("DIRECTORY", DIRECTORY)];
    const FDFLAGS: [(&str, u32); 4] =
        [("APPEND", APPEND), ("NONBLOCK", NONBLOCK), ("SYNC", SYNC), ("DSYNC", DSYNC)];
    let mk = |p: &str| unsafe { sys::path_create_directory(root, p.as_ptr(), p.len() as u32) };
    mk("flags");
    mk("flags/dir");
    let names = |table: &[(&str, u32)], bits: u32| -> String {
        let set: Vec<&str> = table.iter().filter(|(_, b)| bits & b != 0).map(|(n, _)| *n).collect();
        if set.is_empty() { "-".into() } else { set.join("|") }
    };
    for target in ["flags/existing", "flags/missing", "flags/dir"] {
        for (mode, rights) in MODES {
            for o in 0..16u32 {
                let oflags = OFLAGS.iter().enumerate().filter(|(i, _)| o & (1 << i) != 0).fold(0, |a, (_, (_, b))| a | b);
                for f in 0..16u32 {
                    let fdflags = FDFLAGS.iter().enumerate().filter(|(i, _)| f & (1 << i) != 0).fold(0, |a, (_, (_, b))| a | b);
                    reset_flags_fixture(root);
                    let case = format!("{target} {mode} {} {}", names(&OFLAGS, oflags), names(&FDFLAGS, fdflags));
                    let opened = call::open(root, target, FOLLOW, oflags, rights, fdflags);
                    line(format!("path_open({case})"), show(opened, |fd| {
                        let t = call::fdstat(fd).map(|(t, ..)| ftype(t)).unwrap_or("?");
                        format!("ok {t}")
                    }));
                    if let Ok(fd) = opened {
                        after_open(fd);
                        unsafe { sys::fd_close(fd) };
                    }
                }
            }
        }
    }
}

/// `flags/existing` holds "abc", `flags/missing` does not exist (whatever a case
/// before made of it).
fn reset_flags_fixture(root: u32) {
    let fd = call::open(root, "flags/existing", FOLLOW, CREAT | TRUNC, ALL, 0).unwrap();
    call::write(fd, b"abc").unwrap();
    unsafe { sys::fd_close(fd) };
    let missing = "flags/missing";
    unsafe {
        sys::path_unlink_file(root, missing.as_ptr(), missing.len() as u32);
        sys::path_remove_directory(root, missing.as_ptr(), missing.len() as u32);
    }
}

/// What a program does with a descriptor it just opened: look at its flags, write,
/// find where it is, read back from the start, write and read at an offset, size it.
fn after_open(fd: u32) {
    line("  fd_fdstat_get flags", show(call::fdstat(fd), |(_, flags, _)| format!("{flags:#x}")));
    line("  fd_write(xy)", show(call::write(fd, b"xy"), |n| n.to_string()));
    line("  fd_tell", show(call::tell(fd), |n| n.to_string()));
    line("  fd_seek(0, SET)", show(call::seek(fd, 0, SET), |n| n.to_string()));
    line("  fd_read(8)", show(call::read(fd, 8), |b| format!("{:?}", String::from_utf8_lossy(&b))));
    line("  fd_pwrite(Z, at 1)", show(call::pwrite(fd, b"Z", 1), |n| n.to_string()));
    line("  fd_pread(8, at 0)", show(call::pread(fd, 8, 0), |b| format!("{:?}", String::from_utf8_lossy(&b))));
    line("  fd_filestat_get size", show(call::filestat(fd), |(t, _, size, _)| format!("{} size={size}", ftype(t))));
}

fn dirs(root: u32) {
    let mk = |p: &str| line(format!("path_create_directory({p:?})"), res(unsafe { sys::path_create_directory(root, p.as_ptr(), p.len() as u32) }));
    let rmdir = |p: &str| line(format!("path_remove_directory({p:?})"), res(unsafe { sys::path_remove_directory(root, p.as_ptr(), p.len() as u32) }));
    let unlink = |p: &str| line(format!("path_unlink_file({p:?})"), res(unsafe { sys::path_unlink_file(root, p.as_ptr(), p.len() as u32) }));
    mk("made");
    mk("made");
    mk("made/deeper");
    mk("missing/deeper");
    mk("file.txt");
    mk("trail/");
    rmdir("dir");
    rmdir("file.txt");
    rmdir("made/deeper/");
    rmdir("made");
    rmdir("missing");
    rmdir(".");
    rmdir("trail");
    unlink("dir");
    unlink("dir/");
    unlink("file.txt/");
    unlink("missing.txt");
    unlink("empty.txt");
    unlink("link-dir");
    unlink("link-dangling");
    line("path_filestat_get(made) after", show(call::path_filestat(root, FOLLOW, "made"), |(t, ..)| ftype(t).into()));
}

fn readdir(root: u32) {
    for (path, chunk) in [("dir", 4096), ("big", 4096), ("big", 64), (".", 128)] {
        let fd = call::open(root, path, FOLLOW, DIRECTORY, RDONLY, 0).unwrap();
        let listing = call::readdir(fd, chunk).map(|mut names| {
            names.sort();
            let dots = names.iter().filter(|(n, _)| n == "." || n == "..").count();
            let mut text = format!("{} entries, {dots} dot entries;", names.len());
            for (name, kind) in names.iter().filter(|(n, _)| n != "." && n != "..").take(12) {
                let _ = write!(text, " {name}:{}", ftype(*kind));
            }
            text
        });
        line(format!("fd_readdir({path:?}, buf {chunk})"), show(listing, |t| t));
        unsafe { sys::fd_close(fd) };
    }
    let file = call::open(root, "file.txt", FOLLOW, 0, ALL, 0).unwrap();
    line("fd_readdir(file)", show(call::readdir(file, 256), |n| format!("{} entries", n.len())));
    unsafe { sys::fd_close(file) };
    // A cookie past the end.
    let fd = call::open(root, "dir", FOLLOW, DIRECTORY, RDONLY, 0).unwrap();
    let mut buf = [0u8; 256];
    let mut used = 0;
    let rc = unsafe { sys::fd_readdir(fd, buf.as_mut_ptr(), 256, 1000, &mut used) };
    line("fd_readdir(cookie past end)", show(if rc == 0 { Ok(used) } else { Err(rc) }, |u| format!("{u} bytes")));
    unsafe { sys::fd_close(fd) };
}

fn rename(root: u32) {
    let mv = |a: &str, b: &str| {
        let rc = unsafe { sys::path_rename(root, a.as_ptr(), a.len() as u32, root, b.as_ptr(), b.len() as u32) };
        line(format!("path_rename({a:?}, {b:?})"), res(rc));
    };
    mv("file.txt", "renamed.txt");
    mv("renamed.txt", "empty.txt");
    mv("missing.txt", "x.txt");
    mv("emptydir", "dir");
    mv("dir", "emptydir");
    mv("dir/", "dir2/");
    mv("dir2", "dir2/sub/inside");
    mv("empty.txt", "dir2");
    mv("dir2", "empty.txt");
    mv("empty.txt/", "e.txt");
    mv("dir2/inner.txt", "inner-moved.txt");
    mv("link-file", "link-moved");
    mv(".", "dot");
}

fn symlinks(root: u32) {
    let ln = |target: &str, at: &str| {
        let rc = unsafe { sys::path_symlink(target.as_ptr(), target.len() as u32, root, at.as_ptr(), at.len() as u32) };
        line(format!("path_symlink({target:?} -> {at:?})"), res(rc));
    };
    ln("file.txt", "new-link");
    ln("file.txt", "new-link");
    ln("missing", "new-dangling");
    ln("file.txt", "new-slash/");
    ln("/etc/passwd", "new-abs");
    ln("../outside", "new-out");
    for path in ["link-file", "link-dir", "link-dangling", "link-loop", "link-abs", "link-out", "new-link", "file.txt", "missing", "link-file/"] {
        line(format!("path_readlink({path:?})"), show(call::readlink(root, path, 256), |t| format!("{t:?}")));
    }
    line("path_readlink(link-file, 3-byte buffer)", show(call::readlink(root, "link-file", 3), |t| format!("{t:?}")));
    for (path, lookup) in [
        ("link-file", FOLLOW),
        ("link-file", NOFOLLOW),
        ("link-dir", FOLLOW),
        ("link-dir/inner.txt", NOFOLLOW),
        ("link-dangling", FOLLOW),
        ("link-loop", FOLLOW),
        ("link-abs", FOLLOW),
        ("link-out", FOLLOW),
        ("link-file/", FOLLOW),
    ] {
        let r = call::open(root, path, lookup, 0, ALL, 0);
        line(format!("path_open({path:?}, follow={})", lookup == FOLLOW), show(r, |fd| {
            let t = call::fdstat(fd).map(|(t, ..)| ftype(t)).unwrap_or("?");
            unsafe { sys::fd_close(fd) };
            format!("ok {t}")
        }));
        line(
            format!("path_filestat_get({path:?}, follow={})", lookup == FOLLOW),
            show(call::path_filestat(root, lookup, path), |(t, _, size, _)| format!("{} size={size}", ftype(t))),
        );
    }
    let creat_through = call::open(root, "link-dangling", FOLLOW, CREAT, ALL, 0);
    line("path_open(link-dangling, creat)", show(creat_through, |fd| {
        unsafe { sys::fd_close(fd) };
        "ok".into()
    }));
    let unlink = |p: &str| line(format!("path_unlink_file({p:?})"), res(unsafe { sys::path_unlink_file(root, p.as_ptr(), p.len() as u32) }));
    unlink("new-link");
    unlink("link-loop");
    let rmdir = |p: &str| line(format!("path_remove_directory({p:?})"), res(unsafe { sys::path_remove_directory(root, p.as_ptr(), p.len() as u32) }));
    rmdir("link-dir");
}

fn links(root: u32) {
    let link = |a: &str, flags: u32, b: &str| {
        let rc = unsafe { sys::path_link(root, flags, a.as_ptr(), a.len() as u32, root, b.as_ptr(), b.len() as u32) };
        line(format!("path_link({a:?}, {b:?})"), res(rc));
    };
    link("file.txt", 0, "hard.txt");
    link("file.txt", 0, "hard.txt");
    link("dir", 0, "hard-dir");
    link("missing.txt", 0, "x");
    link("file.txt", 0, "missing/x");
    link("link-file", 0, "hard-of-link");
    line("path_filestat_get(hard.txt)", show(call::path_filestat(root, FOLLOW, "hard.txt"), |(t, nlink, size, _)| format!("{} nlink={nlink} size={size}", ftype(t))));
    line("path_filestat_get(hard-of-link, nofollow)", show(call::path_filestat(root, NOFOLLOW, "hard-of-link"), |(t, ..)| ftype(t).into()));
}

fn times(root: u32) {
    let p = "file.txt";
    let set = |atim: u64, mtim: u64, flags: u32| unsafe { sys::path_filestat_set_times(root, FOLLOW, p.as_ptr(), p.len() as u32, atim, mtim, flags) };
    line("path_filestat_set_times(mtim=1e18)", res(set(0, 1_000_000_000_000_000_000, MTIM)));
    line("mtim after", show(call::path_filestat(root, FOLLOW, p), |(.., m)| m.to_string()));
    line("path_filestat_set_times(ATIM|ATIM_NOW)", res(set(5, 0, ATIM | ATIM_NOW)));
    line("path_filestat_set_times(nothing)", res(set(0, 0, 0)));
    let fd = call::open(root, p, FOLLOW, 0, ALL, 0).unwrap();
    line("fd_filestat_set_times(mtim=2e18)", res(unsafe { sys::fd_filestat_set_times(fd, 0, 2_000_000_000_000_000_000, MTIM) }));
    line("mtim after fd set", show(call::filestat(fd), |(.., m)| m.to_string()));
    unsafe { sys::fd_close(fd) };
    let missing = "missing.txt";
    line("path_filestat_set_times(missing)", res(unsafe { sys::path_filestat_set_times(root, FOLLOW, missing.as_ptr(), missing.len() as u32, 0, 0, MTIM) }));
}

fn escape(root: u32) {
    for path in ["..", "../etc/passwd", "dir/../../etc/passwd", "/etc/passwd", "link-abs", "link-out", "dir/sub/../../.."] {
        line(format!("path_open({path:?})"), show(call::open(root, path, FOLLOW, 0, ALL, 0), |fd| {
            unsafe { sys::fd_close(fd) };
            "ok".into()
        }));
        line(format!("path_filestat_get({path:?})"), show(call::path_filestat(root, FOLLOW, path), |(t, ..)| ftype(t).into()));
    }
    let p = "../escaped";
    line("path_create_directory(\"../escaped\")", res(unsafe { sys::path_create_directory(root, p.as_ptr(), p.len() as u32) }));
    let t = "/tmp/x";
    line("path_symlink then open", res(unsafe { sys::path_symlink(t.as_ptr(), t.len() as u32, root, b"abs-link".as_ptr(), 8) }));
    line("path_open(abs-link, creat)", show(call::open(root, "abs-link", FOLLOW, CREAT, ALL, 0), |_| "ok".into()));
}

fn readonly(ro: u32) {
    line("path_open(r.txt, read)", show(call::open(ro, "r.txt", FOLLOW, 0, FD_READ, 0), |fd| {
        let text = call::read(fd, 64).map(|b| String::from_utf8_lossy(&b).into_owned());
        unsafe { sys::fd_close(fd) };
        format!("{text:?}")
    }));
    line("path_open(r.txt, write)", show(call::open(ro, "r.txt", FOLLOW, 0, FD_WRITE, 0), |_| "ok".into()));
    line("path_open(new, creat)", show(call::open(ro, "new", FOLLOW, CREAT, ALL, 0), |_| "ok".into()));
    line("path_open(r.txt, trunc)", show(call::open(ro, "r.txt", FOLLOW, TRUNC, ALL, 0), |_| "ok".into()));
    let p = "rdir/made";
    line("path_create_directory", res(unsafe { sys::path_create_directory(ro, p.as_ptr(), p.len() as u32) }));
    let p = "r.txt";
    line("path_unlink_file", res(unsafe { sys::path_unlink_file(ro, p.as_ptr(), p.len() as u32) }));
    let p = "rdir";
    line("path_remove_directory", res(unsafe { sys::path_remove_directory(ro, p.as_ptr(), p.len() as u32) }));
    let (a, b) = ("r.txt", "s.txt");
    line("path_rename", res(unsafe { sys::path_rename(ro, a.as_ptr(), a.len() as u32, ro, b.as_ptr(), b.len() as u32) }));
    line("path_symlink", res(unsafe { sys::path_symlink(a.as_ptr(), a.len() as u32, ro, b.as_ptr(), b.len() as u32) }));
    line("path_filestat_set_times", res(unsafe { sys::path_filestat_set_times(ro, FOLLOW, a.as_ptr(), a.len() as u32, 0, 0, MTIM) }));
    let fd = call::open(ro, "r.txt", FOLLOW, 0, ALL, 0);
    line("path_open(r.txt, all rights)", show(fd, |_| "ok".into()));
    if let Ok(fd) = fd {
        line("fd_write", show(call::write(fd, b"x"), |n| n.to_string()));
        line("fd_filestat_set_size", res(unsafe { sys::fd_filestat_set_size(fd, 0) }));
        line("fd_allocate", res(unsafe { sys::fd_allocate(fd, 0, 10) }));
        unsafe { sys::fd_close(fd) };
    }
}

fn fds(root: u32) {
    let a = call::open(root, "file.txt", FOLLOW, 0, ALL, 0).unwrap();
    let b = call::open(root, "dir/inner.txt", FOLLOW, 0, ALL, 0).unwrap();
    line("fd_renumber(a, b)", res(unsafe { sys::fd_renumber(a, b) }));
    line("fd_read(b) after renumber", show(call::read(b, 5), |d| format!("{:?}", String::from_utf8_lossy(&d))));
    line("fd_read(a) after renumber", show(call::read(a, 5), |d| format!("{} bytes", d.len())));
    line("fd_renumber(b, 1000)", res(unsafe { sys::fd_renumber(b, 1000) }));
    line("fd_renumber(77, b)", res(unsafe { sys::fd_renumber(77, b) }));
    line("fd_fdstat_set_rights(b, read only)", res(unsafe { sys::fd_fdstat_set_rights(b, FD_READ, 0) }));
    line("fd_write(b) without the right", show(call::write(b, b"x"), |n| n.to_string()));
    line("fd_fdstat_set_rights(b, grow)", res(unsafe { sys::fd_fdstat_set_rights(b, FD_READ | FD_WRITE, 0) }));
    line("fd_close(b)", res(unsafe { sys::fd_close(b) }));
    line("fd_close(b) again", res(unsafe { sys::fd_close(b) }));
    // A preopen renumbered onto a file fd, then closed.
    let c = call::open(root, "empty.txt", FOLLOW, 0, ALL, 0).unwrap();
    line("fd_renumber(root, c)", res(unsafe { sys::fd_renumber(root, c) }));
    let mut prestat = [0u32; 2];
    line("fd_prestat_get(c)", res(unsafe { sys::fd_prestat_get(c, prestat.as_mut_ptr()) }));
    line("path_open through c", show(call::open(c, "file.txt", FOLLOW, 0, ALL, 0), |_| "ok".into()));
    line("fd_close(c: the preopen)", res(unsafe { sys::fd_close(c) }));
    line("path_open through closed preopen", show(call::open(c, "file.txt", FOLLOW, 0, ALL, 0), |_| "ok".into()));
    line("fd_close(0)", res(unsafe { sys::fd_close(0) }));
    line("fd_read(0) after close", show(call::read(0, 1), |d| format!("{} bytes", d.len())));
}

fn misc(root: u32) {
    let mut t = 0u64;
    line("clock_time_get(realtime)", res(unsafe { sys::clock_time_get(0, 1, &mut t) }));
    line("realtime after 2020", (t > 1_577_836_800_000_000_000).to_string());
    line("clock_time_get(monotonic)", res(unsafe { sys::clock_time_get(1, 1, &mut t) }));
    line("clock_time_get(process cputime)", res(unsafe { sys::clock_time_get(2, 1, &mut t) }));
    line("clock_res_get(monotonic)", res(unsafe { sys::clock_res_get(1, &mut t) }));
    let mut buf = [0u8; 64];
    line("random_get(64)", res(unsafe { sys::random_get(buf.as_mut_ptr(), 64) }));
    line("random not all zero", buf.iter().any(|b| *b != 0).to_string());
    line("sched_yield", res(unsafe { sys::sched_yield() }));
    // poll_oneoff: one relative clock subscription of 1 ms.
    let mut sub = [0u8; 48];
    sub[0..8].copy_from_slice(&42u64.to_le_bytes()); // userdata
    sub[8] = 0; // eventtype clock
    sub[16..20].copy_from_slice(&1u32.to_le_bytes()); // clock id monotonic
    sub[24..32].copy_from_slice(&1_000_000u64.to_le_bytes()); // timeout
    let mut events = [0u8; 32];
    let mut n = 0;
    let rc = unsafe { sys::poll_oneoff(sub.as_ptr(), events.as_mut_ptr(), 1, &mut n) };
    line("poll_oneoff(clock 1ms)", show(if rc == 0 { Ok(n) } else { Err(rc) }, |n| {
        let userdata = u64::from_le_bytes(events[0..8].try_into().unwrap());
        let error = u16::from_le_bytes([events[8], events[9]]);
        format!("{n} events, userdata={userdata} error={error} type={}", events[10])
    }));
    let rc = unsafe { sys::poll_oneoff(sub.as_ptr(), events.as_mut_ptr(), 0, &mut n) };
    line("poll_oneoff(no subscriptions)", res(rc));
    let (mut c, mut s) = (0, 0);
    line("args_sizes_get", show(if unsafe { sys::args_sizes_get(&mut c, &mut s) } == 0 { Ok(()) } else { Err(1) }, |_| format!("{c} args, {s} bytes")));
    line("environ_sizes_get", show(if unsafe { sys::environ_sizes_get(&mut c, &mut s) } == 0 { Ok(()) } else { Err(1) }, |_| format!("{c} vars, {s} bytes")));
    let file = call::open(root, "file.txt", FOLLOW, 0, ALL, 0).unwrap();
    line("sock_shutdown(file)", res(unsafe { sys::sock_shutdown(file, 2) }));
    line("sock_shutdown(99)", res(unsafe { sys::sock_shutdown(99, 2) }));
    let data = [0u8; 4];
    let v = [data.as_ptr() as u32, 4];
    let (mut len, mut flags) = (0, 0);
    line("sock_recv(file)", res(unsafe { sys::sock_recv(file, v.as_ptr(), 1, 0, &mut len, &mut flags) }));
    line("sock_send(file)", res(unsafe { sys::sock_send(file, v.as_ptr(), 1, 0, &mut len) }));
    line("sock_recv(99)", res(unsafe { sys::sock_recv(99, v.as_ptr(), 1, 0, &mut len, &mut flags) }));
    unsafe { sys::fd_close(file) };
}

/// What programs do through Rust std (and so through wasi-libc's conventions for rights
/// and flags), each result as `Ok` or the `io::ErrorKind` and OS error.
fn std_fs() {
    use std::fs;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::AsRawFd;
    fn shown<T: std::fmt::Debug>(r: std::io::Result<T>) -> String {
        match r {
            Ok(v) => format!("Ok({v:?})"),
            Err(e) => format!("Err({:?}, os {:?})", e.kind(), e.raw_os_error()),
        }
    }
    let append = fs::OpenOptions::new().append(true).open("/file.txt");
    line("OpenOptions::append().open", match &append {
        Ok(_) => "Ok(())".into(),
        Err(e) => format!("Err({:?}, os {:?})", e.kind(), e.raw_os_error()),
    });
    if let Ok(f) = append {
        // pwrite(2) on the O_WRONLY|O_APPEND descriptor std opened (FileExt is unstable).
        line("pwrite(Q, at 1) on append", show(call::pwrite(f.as_raw_fd() as u32, b"Q", 1), |n| n.to_string()));
        line("write_all on append", shown((&f).write_all(b"tail\n")));
    }
    let created = fs::OpenOptions::new().write(true).create_new(true).open("/fresh.txt");
    line("create_new", shown(created.map(|_| ())));
    line("create_new again", shown(fs::OpenOptions::new().write(true).create_new(true).open("/fresh.txt").map(|_| ())));
    line("read_to_string", shown(fs::read_to_string("/dir/inner.txt")));
    line("read_to_string(dir)", shown(fs::read_to_string("/dir")));
    line("write", shown(fs::write("/dir/w.txt", "w")));
    line("create_dir_all", shown(fs::create_dir_all("/a/b/c")));
    line("create_dir(existing)", shown(fs::create_dir("/a")));
    let mut names: Vec<String> = fs::read_dir("/dir").map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    names.sort();
    line("read_dir(/dir)", names.join(" "));
    line("read_dir(file)", shown(fs::read_dir("/file.txt").map(|_| ())));
    line("metadata(/dir) is_dir", shown(fs::metadata("/dir").map(|m| m.is_dir())));
    line("symlink_metadata(link-file) is_symlink", shown(fs::symlink_metadata("/link-file").map(|m| m.file_type().is_symlink())));
    line("metadata(link-dangling)", shown(fs::metadata("/link-dangling").map(|_| ())));
    line("read_link(link-dir)", shown(fs::read_link("/link-dir")));
    line("rename over existing", shown(fs::rename("/dir/w.txt", "/empty.txt")));
    line("copy", shown(fs::copy("/file.txt", "/copied.txt")));
    line("remove_dir(non-empty)", shown(fs::remove_dir("/a")));
    line("remove_dir_all", shown(fs::remove_dir_all("/a")));
    line("remove_file(dir)", shown(fs::remove_file("/dir")));
    line("hard_link", shown(fs::hard_link("/copied.txt", "/copied-link.txt")));
    let (target, at) = ("inner.txt", "dir/sym");
    let root = preopen("/");
    line("path_symlink(inner.txt -> dir/sym)", res(unsafe { sys::path_symlink(target.as_ptr(), target.len() as u32, root, at.as_ptr(), at.len() as u32) }));
    line("read through symlink", shown(fs::read_to_string("/dir/sym")));
    let mut f = fs::OpenOptions::new().read(true).write(true).open("/copied.txt").map_err(|e| e.to_string());
    if let Ok(f) = f.as_mut() {
        line("seek(End(-3))", shown(f.seek(SeekFrom::End(-3))));
        let mut rest = String::new();
        line("read_to_string rest", shown(f.read_to_string(&mut rest).map(|_| rest.clone())));
        line("set_len(2)", shown(f.set_len(2)));
        line("metadata len", shown(f.metadata().map(|m| m.len())));
        line("sync_all", shown(f.sync_all()));
    }
    line("open ro for write", shown(fs::OpenOptions::new().write(true).open("/ro/r.txt").map(|_| ())));
    line("read ro", shown(fs::read_to_string("/ro/r.txt")));
    line("write into ro", shown(fs::write("/ro/new.txt", "x")));
    line("open ../ escape", shown(fs::read("/../etc/passwd").map(|_| ())));
    line("current_dir", shown(std::env::current_dir()));
    line("relative read", shown(fs::read_to_string("file.txt").map(|s| s.len())));
}
