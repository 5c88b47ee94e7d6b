//! Bad bundles and the audit's findings against `create`: each fails fast and clearly,
//! and what the container process has to say reaches `--log`.

use std::time::{Duration, Instant};

use crate::harness::{Runtime, probe_bundle};

/// A FIFO as the entrypoint made `create` hang for ever: now it is refused at once.
#[test]
fn a_fifo_entrypoint_fails_create_at_once() {
    let rt = Runtime::new();
    let bundle = rt.bundle("fifo", probe_bundle(&["exit", "0"]).args(["/entry.wasm"]));
    rustix::fs::mknodat(
        rustix::fs::CWD,
        bundle.join("rootfs/entry.wasm"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let started = Instant::now();
    let (status, stderr) = rt.create_status("fifo", &bundle);
    assert_eq!(status, Some(127), "{stderr}");
    assert!(stderr.contains("FIFO"), "{stderr}");
    // A liveness bound, not a speed one: a hang would be minutes.
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(rt.is_empty(), "a failed create leaves nothing");
}

/// A working directory that does not exist fails `create`, not `start`.
#[test]
fn a_missing_cwd_fails_create() {
    let rt = Runtime::new();
    let bundle = rt.bundle("cwd", probe_bundle(&["exit", "0"]).cwd("/nowhere"));
    let (status, stderr) = rt.create_status("cwd", &bundle);
    assert_eq!(status, Some(125), "{stderr}");
    assert!(stderr.contains("process.cwd"), "{stderr}");
    assert!(rt.is_empty());
}
