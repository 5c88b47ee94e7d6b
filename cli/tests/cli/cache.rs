//! The precompile cache through the `wasmux` command: a second start hits, a damaged
//! entry is refused, one switch turns it off, and a read-only or full cache directory
//! costs the cache, not the run (with a warning).

use std::path::Path;
use std::process::Output;

use wasmux_conformance::workload;

use crate::support::{precompiling_engines, stderr, stdout, wasmux, wasmux_within};

const GREETING: &str = "Hello from a Wasm container, run by wasmux!\n";

fn hello_bundle() -> String {
    workload::hello_bundle().to_str().unwrap().to_owned()
}

fn run_cached(engine: &str, cache: &Path) -> Output {
    wasmux(&[
        "--log",
        "wasmux_engine_api=debug",
        "run",
        "--engine",
        engine,
        "--cache-dir",
        cache.to_str().unwrap(),
        &hello_bundle(),
    ])
}

fn assert_greeted(out: &Output, engine: &str) {
    assert_eq!(out.status.code(), Some(0), "{engine}: {}", stderr(out));
    assert_eq!(stdout(out), GREETING, "{engine}");
}

fn entries(cache: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn some_engine_precompiles() {
    assert!(precompiling_engines().contains(&"wasmtime".to_owned()));
}

#[test]
fn the_second_start_loads_from_the_cache_on_every_precompiling_engine() {
    for engine in precompiling_engines() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let cold = run_cached(&engine, &cache);
        assert_greeted(&cold, &engine);
        assert!(!stderr(&cold).contains("cache hit"), "{engine}");
        assert_eq!(entries(&cache).len(), 1, "{engine}");
        let warm = run_cached(&engine, &cache);
        assert_greeted(&warm, &engine);
        assert!(
            stderr(&warm).contains("precompile cache hit"),
            "{engine}: {}",
            stderr(&warm)
        );
        assert!(
            !stderr(&warm).contains("warning"),
            "{engine}: {}",
            stderr(&warm)
        );
    }
}

#[test]
fn a_damaged_entry_is_refused_with_a_warning_and_replaced() {
    for engine in precompiling_engines() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        assert_greeted(&run_cached(&engine, &cache), &engine);
        let [entry] = entries(&cache).try_into().unwrap();
        let bytes = std::fs::read(&entry).unwrap();
        std::fs::write(&entry, &bytes[..bytes.len() / 2]).unwrap();
        let out = run_cached(&engine, &cache);
        assert_greeted(&out, &engine);
        assert!(
            stderr(&out).contains("wasmux: warning: replaced a refused cache entry")
                && stderr(&out).contains("truncated"),
            "{engine}: {}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read(&entry).unwrap(),
            bytes,
            "{engine}: not rewritten whole"
        );
    }
}

#[test]
fn one_switch_turns_the_cache_off() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_var = format!("WASMUX_CACHE_DIR={}", cache.display());
    let hello = hello_bundle();
    // The helper's environment has WASMUX_CACHE=off: the directory variable is ignored.
    assert_greeted(
        &wasmux_within(&["env", &cache_var], &["run", &hello]),
        "wasmtime",
    );
    assert!(!cache.exists());
    let on = ["env", "WASMUX_CACHE=on", &cache_var];
    assert_greeted(
        &wasmux_within(&on, &["run", "--no-cache", &hello]),
        "wasmtime",
    );
    assert!(!cache.exists());
    assert_greeted(&wasmux_within(&on, &["run", &hello]), "wasmtime");
    assert_eq!(entries(&cache).len(), 1);
}

/// Runs the hello bundle on `engine` with the cache in `cache`, after `setup` (a shell
/// snippet run as root in private user and mount namespaces, `$1` being the cache
/// directory), and lists what the directory holds afterwards on stderr.
fn run_in_namespace(engine: &str, cache: &Path, setup: &str) -> Output {
    let script = format!(
        r#"set -e; {setup}; shift; set +e; "$@"; rc=$?; echo "left: [$(ls -A "$0")]" >&2; exit $rc"#
    );
    let cache = cache.to_str().unwrap();
    let out = wasmux_within(
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            &script,
            cache,
            cache,
        ],
        &[
            "run",
            "--engine",
            engine,
            "--cache-dir",
            cache,
            &hello_bundle(),
        ],
    );
    assert!(
        !stderr(&out).contains("unshare:") && !stderr(&out).contains("mount:"),
        "this test needs user and mount namespaces (unshare -rm): {}",
        stderr(&out)
    );
    out
}

#[test]
fn a_read_only_cache_directory_runs_uncached_with_a_warning() {
    for engine in precompiling_engines() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        // Already private, so opening it needs no write: only storing fails.
        std::fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let out = run_in_namespace(
            &engine,
            &cache,
            r#"mount --bind "$1" "$1"; mount -o remount,ro,bind "$1""#,
        );
        assert_greeted(&out, &engine);
        let err = stderr(&out);
        assert!(
            err.contains("wasmux: warning: compiled, not cached") && err.contains("Read-only"),
            "{engine}: {err}"
        );
        assert!(err.contains("left: []"), "{engine}: {err}");
    }
}

#[test]
fn a_full_cache_directory_runs_uncached_with_a_warning_and_no_partial_entry() {
    for engine in precompiling_engines() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        // 16 KiB: far smaller than any compiled hello.
        let out = run_in_namespace(&engine, &cache, r#"mount -t tmpfs -o size=16k tmpfs "$1""#);
        assert_greeted(&out, &engine);
        let err = stderr(&out);
        assert!(
            err.contains("wasmux: warning: compiled, not cached")
                && err.contains("No space left on device"),
            "{engine}: {err}"
        );
        assert!(err.contains("left: []"), "{engine}: {err}");
    }
}

#[test]
fn an_unusable_cache_directory_runs_uncached_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let out = wasmux(&[
        "run",
        "--cache-dir",
        not_a_dir.to_str().unwrap(),
        &hello_bundle(),
    ]);
    assert_greeted(&out, "wasmtime");
    assert!(
        stderr(&out).contains("wasmux: warning: precompile cache")
            && stderr(&out).contains("not a directory"),
        "{}",
        stderr(&out)
    );
}
