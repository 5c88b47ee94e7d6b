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
        "wasmux_core=debug",
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

/// The hello module with a custom section making it 1 MiB larger: big enough for
/// wasmtime's `tier=auto` to start it on baseline code (custom sections are not code).
fn big_hello(dir: &Path) -> std::path::PathBuf {
    let mut bytes = std::fs::read(wasmux_conformance::guests::core_module("hello")).unwrap();
    wasmux_conformance::wasm_bytes::custom_section("wasmux-padding", &[0; 1 << 20], &mut bytes);
    let path = dir.join("big-hello.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn run_big(module: &Path, cache: &Path, tier: &str) -> Output {
    wasmux(&[
        "--log",
        "wasmux_core=debug",
        "run",
        "--engine",
        "wasmtime",
        "--engine-option",
        &format!("tier={tier}"),
        "--cache-dir",
        cache.to_str().unwrap(),
        module.to_str().unwrap(),
    ])
}

#[test]
fn a_big_modules_first_start_runs_baseline_code_while_a_detached_process_caches_optimized_code() {
    let dir = tempfile::tempdir().unwrap();
    let module = big_hello(dir.path());
    let cache = dir.path().join("cache");
    let first = run_big(&module, &cache, "auto");
    assert_greeted(&first, "wasmtime");
    assert!(
        stderr(&first).contains("baseline tier"),
        "{}",
        stderr(&first)
    );
    // The fill outlives the run: wait for its entry (written by rename, so complete).
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while entries(&cache).is_empty() {
        assert!(std::time::Instant::now() < until, "no entry after 120 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let stored = entries(&cache);
    assert_eq!(
        stored.len(),
        1,
        "one entry, no temporary file left: {stored:?}"
    );
    let second = run_big(&module, &cache, "auto");
    assert_greeted(&second, "wasmtime");
    assert!(
        stderr(&second).contains("precompile cache hit"),
        "{}",
        stderr(&second)
    );
}

#[test]
fn tiers_are_separate_cache_entries() {
    let dir = tempfile::tempdir().unwrap();
    let module = big_hello(dir.path());
    let cache = dir.path().join("cache");
    for tier in ["optimized", "baseline"] {
        let cold = run_big(&module, &cache, tier);
        assert_greeted(&cold, tier);
        assert!(
            !stderr(&cold).contains("baseline tier"),
            "{tier}: compiled for the cache now"
        );
    }
    assert_eq!(
        entries(&cache).len(),
        2,
        "Cranelift's and Winch's code, apart"
    );
    for tier in ["optimized", "baseline"] {
        let warm = run_big(&module, &cache, tier);
        assert!(
            stderr(&warm).contains("precompile cache hit"),
            "{tier}: {}",
            stderr(&warm)
        );
    }
}

/// `wasmux cache --cache-dir CACHE ARGS...`, expected to succeed; its stdout.
fn cache_command(cache: &Path, args: &[&str]) -> String {
    let mut all = vec!["cache", "--cache-dir", cache.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = wasmux(&all);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn list_shows_each_entrys_engine_configuration_and_module() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    assert_greeted(&run_cached("wasmtime", &cache), "wasmtime");
    let listing = cache_command(&cache, &["list"]);
    let row = listing
        .lines()
        .find(|l| l.contains(" wasmtime "))
        .unwrap_or_else(|| panic!("no wasmtime entry:\n{listing}"));
    let version = wasmux(&["engines"]);
    assert!(
        stdout(&version).contains(&format!(
            "wasmtime {}",
            row.split_whitespace().nth(2).unwrap()
        )),
        "{row}"
    );
    assert!(row.contains("cranelift-"), "{row}");
    assert!(listing.contains("1 entries"), "{listing}");
}

#[test]
fn verify_finds_removes_and_reports_a_damaged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    assert_greeted(&run_cached("wasmtime", &cache), "wasmtime");
    let entry = &entries(&cache)[0];
    let mut bytes = std::fs::read(entry).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(entry, bytes).unwrap();
    let report = cache_command(&cache, &["verify"]);
    assert!(report.contains("integrity hash mismatch"), "{report}");
    assert!(report.contains("1 removed, 0 sound"), "{report}");
    assert!(entries(&cache).is_empty());
    assert_greeted(&run_cached("wasmtime", &cache), "wasmtime");
    assert!(cache_command(&cache, &["verify"]).contains("0 removed, 1 sound"));
}

#[test]
fn prune_trims_by_age_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for engine in precompiling_engines() {
        assert_greeted(&run_cached(&engine, &cache), &engine);
    }
    let stored = entries(&cache).len();
    let aged = cache_command(&cache, &["prune", "--older-than", "1d"]);
    assert!(
        aged.contains(&format!("0 removed, {stored} kept")),
        "{aged}"
    );
    let emptied = cache_command(&cache, &["prune", "--max-size", "0"]);
    assert!(
        emptied.contains(&format!("{stored} removed, 0 kept")),
        "{emptied}"
    );
    assert!(emptied.contains("least recently used"), "{emptied}");
    let bad = wasmux(&["cache", "prune", "--older-than", "soon"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(stderr(&bad).contains("soon"), "{}", stderr(&bad));
}

#[test]
fn precompile_fills_the_cache_so_the_first_start_hits() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = wasmux(&[
        "cache",
        "precompile",
        "--engine",
        "wasmtime",
        "--cache-dir",
        cache.to_str().unwrap(),
        &hello_bundle(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("compiled and cached"),
        "{}",
        stdout(&out)
    );
    let first = run_cached("wasmtime", &cache);
    assert_greeted(&first, "wasmtime");
    assert!(
        stderr(&first).contains("precompile cache hit"),
        "{}",
        stderr(&first)
    );
}

/// Runs keep starting, hitting and refilling the cache while prunes empty it under
/// them: every run is correct (an evicted entry a run has mapped stays its own).
#[test]
fn runs_stay_correct_while_prunes_evict_under_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let engines = precompiling_engines();
    std::thread::scope(|scope| {
        let runners: Vec<_> = (0..3)
            .map(|i| {
                let (engine, cache) = (&engines[i % engines.len()], &cache);
                scope.spawn(move || {
                    for _ in 0..6 {
                        assert_greeted(&run_cached(engine, cache), engine);
                    }
                })
            })
            .collect();
        let pruner = scope.spawn(|| {
            for _ in 0..12 {
                cache_command(&cache, &["prune", "--max-size", "0"]);
            }
        });
        for runner in runners {
            runner.join().unwrap();
        }
        pruner.join().unwrap();
    });
    cache_command(&cache, &["verify"]);
}

/// `wasmux.io/engine-options` reaches the engine from a bundle: wasmtime compiles with
/// the tier it names (its cache entry says which compiler made it), and an engine
/// without the option refuses it by name.
#[test]
fn the_engine_options_annotation_configures_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let bundle = wasmux_conformance::BundleBuilder::with_module(
        &wasmux_conformance::guests::core_module("hello"),
        &[],
    )
    .annotation("wasmux.io/engine-options", "tier=baseline")
    .write(dir.path());
    let bundle = bundle.to_str().unwrap();
    let cache_dir = cache.to_str().unwrap();
    let out = wasmux(&[
        "run",
        "--engine",
        "wasmtime",
        "--cache-dir",
        cache_dir,
        bundle,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listing = cache_command(&cache, &["list"]);
    assert!(listing.contains(" winch-"), "{listing}");
    let annotated = |options: &str, name: &str| {
        wasmux_conformance::BundleBuilder::with_module(
            &wasmux_conformance::guests::core_module("hello"),
            &[],
        )
        .annotation("wasmux.io/engine-options", options)
        .write(&dir.path().join(name))
    };
    let pooled = annotated("pooling=2", "pooled");
    let refused = wasmux(&["run", "--engine", "wasmer", pooled.to_str().unwrap()]);
    assert_ne!(refused.status.code(), Some(0));
    let message = stderr(&refused);
    assert!(
        message.contains("wasmer") && message.contains("pooling"),
        "{message}"
    );
    let typo = annotated("tier=fastest", "typo");
    let out = wasmux(&["run", typo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("wasmux.io/engine-options"),
        "{}",
        stderr(&out)
    );
}
