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
        other => fail(&format!("unknown probe command {other:?}")),
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
