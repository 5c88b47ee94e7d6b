//! The probe guest: `probe COMMAND ARGS...` does one thing a conformance case checks and
//! reports it on stdout, one line per observation, so the host can compare exact bytes.

use std::fs;
use std::hint::black_box;
use std::io::{Read, Write};
use std::process::exit;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let command = args.get(1).map(String::as_str).unwrap_or("");
    let rest = &args[args.len().min(2)..];
    match command {
        "exit" => exit(rest[0].parse().unwrap_or(99)),
        "return" => {}
        "trap" => trap(&rest[0]),
        "spin" => spin(),
        "args" => {
            for (i, arg) in args.iter().enumerate() {
                println!("{i}:{arg:?}");
            }
        }
        "env" => {
            let mut vars: Vec<_> = std::env::vars().collect();
            vars.sort();
            for (k, v) in vars {
                println!("{k}={v:?}");
            }
        }
        "read" => match fs::read(&rest[0]) {
            Ok(bytes) => {
                std::io::stdout().write_all(&bytes).unwrap();
            }
            Err(e) => fail(&format!("read {}: {e}", rest[0])),
        },
        "write" => match fs::write(&rest[0], &rest[1]) {
            Ok(()) => println!("wrote {}", rest[0]),
            Err(e) => fail(&format!("write {}: {e}", rest[0])),
        },
        "ls" => match fs::read_dir(&rest[0]) {
            Ok(entries) => {
                let mut names: Vec<_> = entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for name in names {
                    println!("{name}");
                }
            }
            Err(e) => fail(&format!("ls {}: {e}", rest[0])),
        },
        "mutate" => mutate(&rest[0]),
        "try-read" => {
            // Each path on its own line: "refused" or "READ <n> bytes".
            for path in rest {
                match fs::read(path) {
                    Ok(bytes) => println!("{path}: READ {} bytes", bytes.len()),
                    Err(_) => println!("{path}: refused"),
                }
            }
        }
        "alloc" => {
            let mib: usize = rest[0].parse().unwrap();
            let mut v = vec![0u8; mib << 20];
            v[(mib << 20) - 1] = 1;
            black_box(&v);
            println!("allocated {mib} MiB");
        }
        // Says it is running, then waits for stdin to close: a live instance to count.
        "hold" => {
            println!("ready");
            std::io::stdout().flush().unwrap();
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).unwrap();
        }
        // Writes to stdout until a write fails, then names the error on stderr.
        "write-until-error" => {
            let chunk = vec![b'x'; 64 * 1024];
            let mut stdout = std::io::stdout();
            loop {
                if let Err(e) = stdout.write_all(&chunk).and_then(|()| stdout.flush()) {
                    eprintln!("stdout error: {:?}", e.kind());
                    return;
                }
            }
        }
        "echo" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).unwrap();
            std::io::stdout().write_all(&buf).unwrap();
        }
        "spew" => {
            let (out, err): (usize, usize) = (rest[0].parse().unwrap(), rest[1].parse().unwrap());
            std::io::stdout().write_all(&pattern(out, 1)).unwrap();
            std::io::stderr().write_all(&pattern(err, 7)).unwrap();
        }
        "clock" => clock(),
        "random" => random(),
        "tmpfs" => tmpfs(&rest[0]),
        "open-many" => open_many(&rest[0], rest[1].parse().unwrap()),
        "identity" => {
            let id = std::env::var("ID").unwrap_or_default();
            let file = fs::read_to_string("/data/id").unwrap_or_else(|e| format!("error: {e}"));
            println!("env={id} file={file}");
        }
        "devices" => devices(),
        // Whether the standard streams are terminals (a container run with `-t`).
        "tty" => {
            use std::io::IsTerminal;
            println!(
                "stdin={} stdout={} stderr={}",
                std::io::stdin().is_terminal(),
                std::io::stdout().is_terminal(),
                std::io::stderr().is_terminal()
            );
        }
        "primes" => primes(rest[0].parse().unwrap_or(0)),
        other => fail(&format!("unknown probe command {other:?}")),
    }
}

/// Prints the realtime clock (seconds since the epoch) and checks the monotonic clock
/// never goes backwards over many reads.
fn clock() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    println!("realtime {}", now.as_secs());
    let mut last = std::time::Instant::now();
    for _ in 0..10_000 {
        let next = std::time::Instant::now();
        if next < last {
            fail("monotonic clock went backwards");
        }
        last = next;
    }
    println!("monotonic ok");
}

/// Two 32-byte draws straight from WASI's `random_get`, as hex for the host to compare.
fn random() {
    for _ in 0..2 {
        let mut buf = [0u8; 32];
        wasi_random_get(&mut buf);
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        println!("{hex}");
    }
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    #[link_name = "random_get"]
    fn random_get_raw(buf: *mut u8, len: usize) -> u16;
}

fn wasi_random_get(buf: &mut [u8]) {
    let errno = unsafe { random_get_raw(buf.as_mut_ptr(), buf.len()) };
    if errno != 0 {
        fail(&format!("random_get failed with errno {errno}"));
    }
}

/// A tmpfs mount is present, empty and writable.
fn tmpfs(dir: &str) {
    let entries = fs::read_dir(dir).map(|d| d.count());
    println!("entries: {entries:?}");
    let file = format!("{dir}/scratch.txt");
    fs::write(&file, b"scratch").unwrap_or_else(|e| fail(&format!("write {file}: {e}")));
    println!("read back: {}", fs::read_to_string(&file).unwrap());
}

/// Creates `n` files in `dir` and keeps them all open at once before closing them.
fn open_many(dir: &str, n: usize) {
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let path = format!("{dir}/f{i}");
        match fs::File::create(&path) {
            Ok(f) => files.push(f),
            Err(e) => fail(&format!("open #{i}: {e}")),
        }
    }
    for (i, f) in files.iter_mut().enumerate() {
        writeln!(f, "{i}").unwrap_or_else(|e| fail(&format!("write #{i}: {e}")));
    }
    let open = files.len();
    drop(files);
    println!("held {open} files open");
}

/// The default devices of an OCI Linux container, each on its own line.
fn devices() {
    let null_read = fs::read("/dev/null").map(|b| b.len());
    println!("null read: {null_read:?}");
    let null_write = fs::OpenOptions::new().write(true).open("/dev/null").and_then(|mut f| f.write_all(b"x"));
    println!("null write: {:?}", null_write.is_ok());
    let mut zeros = [1u8; 16];
    let zero = fs::File::open("/dev/zero").and_then(|mut f| f.read_exact(&mut zeros));
    println!("zero: {:?}", zero.is_ok() && zeros == [0; 16]);
    let full = fs::OpenOptions::new().write(true).open("/dev/full").and_then(|mut f| f.write_all(b"x"));
    // Refused is what counts (ENOSPC, from the device).
    println!("full: {}", if full.is_err() { "refused" } else { "write succeeded" });
    for dev in ["random", "urandom"] {
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        let ok = fs::File::open(format!("/dev/{dev}"))
            .and_then(|mut f| f.read_exact(&mut a).and_then(|()| f.read_exact(&mut b)));
        println!("{dev}: {:?}", ok.is_ok() && a != b);
    }
    for other in ["/dev/sda", "/dev/mem", "/dev/tty", "/dev/shm"] {
        println!("{other}: {}", if fs::metadata(other).is_ok() { "VISIBLE" } else { "absent" });
    }
}

/// Called as `module.wasm#hello_export` instead of `_start`.
#[unsafe(no_mangle)]
pub extern "C" fn hello_export() {
    println!("hello from an export");
}

/// Deterministic bytes the host can regenerate: byte i is (i * step + i / 251) mod 256.
fn pattern(len: usize, step: usize) -> Vec<u8> {
    (0..len).map(|i| (i * step + i / 251) as u8).collect()
}

fn fail(message: &str) -> ! {
    println!("error: {message}");
    exit(1)
}

fn trap(kind: &str) {
    match kind {
        "unreachable" => core::arch::wasm32::unreachable(),
        "oob" => {
            let far = black_box(0xffff_fff0usize) as *const u64;
            let value = unsafe { far.read_volatile() };
            println!("read {value}");
        }
        "stack" => println!("{}", recurse(black_box(1))),
        other => fail(&format!("unknown trap {other:?}")),
    }
}

/// Recursion that keeps its state in wasm locals, not Rust's shadow stack in linear
/// memory, so it exhausts the engine's call stack (a real stack-overflow trap).
fn recurse(n: u64) -> u64 {
    if black_box(n) == u64::MAX {
        return 0;
    }
    recurse(black_box(n + 1)).wrapping_add(1)
}

/// Counts the primes below `limit` with a sieve and prints the count and a checksum:
/// compute-bound work whose exact answer checks the engine's code generation, and whose
/// run time compares engines' code speed.
fn primes(limit: usize) {
    let mut composite = vec![false; limit];
    let (mut count, mut checksum) = (0u64, 0u64);
    for n in 2..limit {
        if composite[n] {
            continue;
        }
        count += 1;
        checksum = checksum.wrapping_mul(31).wrapping_add(n as u64);
        for multiple in (n.saturating_mul(n)..limit).step_by(n) {
            composite[multiple] = true;
        }
    }
    println!("{count} {checksum}");
}

fn spin() -> ! {
    let mut x = 0u64;
    loop {
        x = black_box(x.wrapping_add(1));
    }
}

/// Every way of changing a directory, each on its own line: "refused" or "ALLOWED".
fn mutate(dir: &str) {
    let existing = format!("{dir}/existing.txt");
    let attempts: [(&str, Box<dyn Fn() -> std::io::Result<()>>); 6] = [
        ("create", Box::new(|| fs::write(format!("{dir}/new.txt"), b"x"))),
        ("write", Box::new(|| fs::OpenOptions::new().append(true).open(&existing)?.write_all(b"x"))),
        ("truncate", Box::new(|| fs::OpenOptions::new().write(true).truncate(true).open(&existing).map(drop))),
        ("rename", Box::new(|| fs::rename(&existing, format!("{dir}/renamed.txt")))),
        ("delete", Box::new(|| fs::remove_file(&existing))),
        ("mkdir", Box::new(|| fs::create_dir(format!("{dir}/newdir")))),
    ];
    for (what, attempt) in attempts {
        println!("{what}: {}", if attempt().is_ok() { "ALLOWED" } else { "refused" });
    }
}
