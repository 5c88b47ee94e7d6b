//! The cache's fault handling, against a test engine whose "native code" is the module
//! bytes reversed, so every load says whether it came from the cache and from what.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use super::*;
use crate::inventory::PrunePolicy;
use wasmux_core::{
    CacheEvent, Capabilities, Descriptor, DynEngine, Engine, EngineInfo, Error, LoadedModule,
    Module, Precompile, Precompiler, RawRun, Result, RunControl, RunSpec, Support, WasmBinary,
    WasmKind,
};

/// A compiling engine, as far as the cache can tell.
pub(crate) const TEST_ENGINE: Descriptor = Descriptor {
    name: "reverser",
    version: "1",
    capabilities: Capabilities {
        components: Support::Supported,
        memory_limit: Support::Supported,
        interrupt: Support::Supported,
        serve_http: Support::Supported,
    },
    options: wasmux_core::OptionSupport::NONE,
};

/// The test engine's configuration, as its precompile fingerprint.
const FINGERPRINT: &str = "reversed";

/// Counts how modules were made; refuses artifacts that start with `refuse`. `tiered`:
/// a miss loads "baseline code" (the bytes with a `baseline:` prefix).
#[derive(Default)]
struct Reverser {
    compiles: AtomicUsize,
    precompiled_loads: AtomicUsize,
    tiered: bool,
}

#[derive(Debug, PartialEq)]
struct Loaded(Vec<u8>);

impl Module for Loaded {
    fn descriptor(&self) -> &'static Descriptor {
        &TEST_ENGINE
    }
    /// Does not run: reports the code it was loaded from, as an error.
    fn execute(&self, _: RunSpec, _: &RunControl) -> Result<RawRun> {
        Err(Error::InvalidBundle(
            String::from_utf8_lossy(&self.0).into_owned(),
        ))
    }
}

impl EngineInfo for Reverser {
    fn descriptor(&self) -> &'static Descriptor {
        &TEST_ENGINE
    }
}

impl Engine for Reverser {
    type Module = Loaded;

    fn load_module(&self, wasm: &WasmBinary) -> Result<Loaded> {
        self.compiles.fetch_add(1, Ordering::SeqCst);
        Ok(Loaded(wasm.bytes.to_vec()))
    }

    fn precompiler(&self) -> Precompiler<'_, Loaded> {
        Precompiler::Available(self)
    }
}

impl Precompile<Loaded> for Reverser {
    fn fingerprint(&self) -> String {
        FINGERPRINT.into()
    }

    fn compile_for_cache(&self, wasm: &WasmBinary) -> Result<(Loaded, Vec<u8>)> {
        let module = self.load_module(wasm)?;
        let native = module.0.iter().rev().copied().collect();
        Ok((module, native))
    }

    fn load_precompiled(&self, _: &WasmBinary, artifact: &Artifact) -> Result<Loaded> {
        self.precompiled_loads.fetch_add(1, Ordering::SeqCst);
        if artifact.bytes().starts_with(b"refuse") {
            return Err(Error::InvalidBundle("refused".into()));
        }
        Ok(Loaded(artifact.bytes().iter().rev().copied().collect()))
    }

    fn load_baseline(&self, wasm: &WasmBinary) -> Option<Result<Loaded>> {
        self.tiered
            .then(|| Ok(Loaded([b"baseline:", &wasm.bytes[..]].concat())))
    }
}

fn wasm(bytes: &[u8]) -> WasmBinary {
    WasmBinary {
        bytes: Arc::from(bytes),
        kind: WasmKind::CoreModule,
        origin: "test.wasm".into(),
    }
}

/// The code a loaded test module was made from (its run reports it).
fn code(module: &LoadedModule) -> Loaded {
    match module.run(RunSpec::new(wasm(b"spec")), &RunControl::new()) {
        Err(Error::InvalidBundle(code)) => Loaded(code.into_bytes()),
        other => panic!("a test module reports its code, got {other:?}"),
    }
}

/// Loads through the core's cache path, as every embedder does, and says from what.
fn load_cached(
    engine: &impl DynEngine,
    wasm: &WasmBinary,
    cache: Option<&PrecompileCache>,
) -> Result<(Loaded, CacheEvent)> {
    let (module, event) = engine.load_cached(wasm, cache.map(|c| c as &dyn ArtifactStore))?;
    Ok((code(&module), event))
}

fn fill_cache(
    engine: &impl DynEngine,
    wasm: &WasmBinary,
    cache: &PrecompileCache,
) -> Result<CacheEvent> {
    engine.fill_cache(wasm, cache)
}

fn key_of(bytes: &[u8]) -> ArtifactKey {
    cache_key(&TEST_ENGINE, FINGERPRINT, bytes)
}

fn fresh() -> (tempfile::TempDir, PrecompileCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = PrecompileCache::open(dir.path().join("cache")).unwrap();
    (dir, cache)
}

#[test]
fn a_miss_stores_and_the_next_load_hits_without_compiling() {
    let (_dir, cache) = fresh();
    let engine = Reverser::default();
    let module = wasm(b"module bytes");
    let (first, event) = load_cached(&engine, &module, Some(&cache)).unwrap();
    assert_eq!(event, CacheEvent::Stored);
    let (second, event) = load_cached(&engine, &module, Some(&cache)).unwrap();
    assert_eq!(event, CacheEvent::Hit);
    assert_eq!(first, second);
    assert_eq!(engine.compiles.load(Ordering::SeqCst), 1);
    assert_eq!(engine.precompiled_loads.load(Ordering::SeqCst), 1);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(cache.dir()), 0o700);
    assert_eq!(mode(&cache.entry_path(&key_of(b"module bytes"))), 0o600);
}

#[test]
fn a_tiered_miss_runs_baseline_code_until_the_fill_stores_the_optimized_entry() {
    let (_dir, cache) = fresh();
    let engine = Reverser {
        tiered: true,
        ..Default::default()
    };
    let module = wasm(b"big module");
    let (first, event) = load_cached(&engine, &module, Some(&cache)).unwrap();
    assert_eq!(event, CacheEvent::Deferred);
    assert_eq!(first, Loaded(b"baseline:big module".to_vec()));
    assert!(!cache.entry_path(&key_of(b"big module")).exists());
    // A second start before the fill is baseline code again, not a half entry.
    let (_, event) = load_cached(&engine, &module, Some(&cache)).unwrap();
    assert_eq!(event, CacheEvent::Deferred);
    assert_eq!(
        fill_cache(&engine, &module, &cache).unwrap(),
        CacheEvent::Stored
    );
    let (filled, event) = load_cached(&engine, &module, Some(&cache)).unwrap();
    assert_eq!(event, CacheEvent::Hit);
    assert_eq!(filled, Loaded(b"big module".to_vec()));
    assert_eq!(
        engine.compiles.load(Ordering::SeqCst),
        1,
        "one optimized compile"
    );
    // Without a cache there is nothing to defer to: the optimized code, now.
    let (direct, event) = load_cached(&engine, &module, None).unwrap();
    assert_eq!(
        (direct, event),
        (Loaded(b"big module".to_vec()), CacheEvent::Off)
    );
}

#[test]
fn no_cache_or_an_interpreter_compiles_every_time() {
    let (_dir, cache) = fresh();
    let engine = Reverser::default();
    let (_, event) = load_cached(&engine, &wasm(b"m"), None).unwrap();
    assert_eq!(event, CacheEvent::Off);
    struct Interpreter;
    impl EngineInfo for Interpreter {
        fn descriptor(&self) -> &'static Descriptor {
            &TEST_ENGINE
        }
    }
    impl Engine for Interpreter {
        type Module = Loaded;
        fn load_module(&self, wasm: &WasmBinary) -> Result<Loaded> {
            Ok(Loaded(wasm.bytes.to_vec()))
        }
        fn precompiler(&self) -> Precompiler<'_, Loaded> {
            Precompiler::Unavailable("interpreter")
        }
    }
    let (_, event) = load_cached(&Interpreter, &wasm(b"m"), Some(&cache)).unwrap();
    assert_eq!(event, CacheEvent::Uncacheable("interpreter"));
    assert_eq!(fs::read_dir(cache.dir()).unwrap().count(), 0);
    // What embedders see follows from the precompiler, for both engines.
    assert_eq!(
        Interpreter.precompile(),
        Support::Unsupported("interpreter")
    );
    assert_eq!(Reverser::default().precompile(), Support::Supported);
    assert_eq!(
        Interpreter.support(wasmux_core::Capability::Precompile),
        Support::Unsupported("interpreter")
    );
}

/// The kind check runs once per load, in the shared path: a component never reaches a
/// core-only backend's hook.
#[test]
fn a_component_on_a_core_only_engine_is_unsupported_before_the_backend_sees_it() {
    struct CoreOnly(AtomicUsize);
    impl EngineInfo for CoreOnly {
        fn descriptor(&self) -> &'static Descriptor {
            const CORE_ONLY: Descriptor = Descriptor {
                capabilities: Capabilities {
                    components: Support::Unsupported("core modules only"),
                    ..TEST_ENGINE.capabilities
                },
                ..TEST_ENGINE
            };
            &CORE_ONLY
        }
    }
    impl Engine for CoreOnly {
        type Module = Loaded;
        fn load_module(&self, wasm: &WasmBinary) -> Result<Loaded> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Loaded(wasm.bytes.to_vec()))
        }
        fn precompiler(&self) -> Precompiler<'_, Loaded> {
            Precompiler::Unavailable("interpreter")
        }
    }
    let engine = CoreOnly(AtomicUsize::new(0));
    let mut component = wasm(b"c");
    component.kind = WasmKind::Component;
    let err = DynEngine::load(&engine, &component).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unsupported {
                feature: "components",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(engine.0.load(Ordering::SeqCst), 0);
}

/// Damages the stored entry of `module`, then checks the next load never hands the
/// damaged bytes to the engine, compiles afresh and leaves a good entry behind.
fn assert_refused_and_replaced(damage: impl FnOnce(&Path), expected: &str) {
    let (_dir, cache) = fresh();
    let engine = Reverser::default();
    let module = wasm(b"module bytes");
    load_cached(&engine, &module, Some(&cache)).unwrap();
    damage(&cache.entry_path(&key_of(b"module bytes")));
    let (loaded, event) = load_cached(&engine, &module, Some(&cache)).unwrap();
    assert_eq!(loaded, Loaded(b"module bytes".to_vec()));
    match &event {
        CacheEvent::Replaced(reason) => assert!(reason.contains(expected), "{reason}"),
        other => panic!("expected a replaced entry, got {other:?}"),
    }
    assert_eq!(engine.precompiled_loads.load(Ordering::SeqCst), 0);
    assert_eq!(engine.compiles.load(Ordering::SeqCst), 2);
    let (_, event) = load_cached(&engine, &module, Some(&cache)).unwrap();
    assert_eq!(event, CacheEvent::Hit);
}

#[test]
fn a_corrupt_entry_is_never_loaded() {
    assert_refused_and_replaced(
        |path| {
            let mut bytes = fs::read(path).unwrap();
            bytes[0] ^= 0x40;
            fs::write(path, bytes).unwrap();
        },
        "integrity hash mismatch",
    );
}

#[test]
fn a_truncated_entry_is_never_loaded() {
    assert_refused_and_replaced(
        |path| {
            let bytes = fs::read(path).unwrap();
            fs::write(path, &bytes[..bytes.len() - 3]).unwrap();
        },
        "truncated",
    );
    assert_refused_and_replaced(|path| fs::write(path, b"").unwrap(), "truncated");
}

#[test]
fn a_foreign_entry_is_never_loaded() {
    assert_refused_and_replaced(
        |path| {
            let other = entry::encode(
                &key_of(b"another module"),
                &EntryInfo::default(),
                b"seludom rehtona",
            );
            fs::write(path, other).unwrap();
        },
        "another module or engine",
    );
    assert_refused_and_replaced(
        |path| fs::write(path, [b"\x7fELF".as_slice(), &[0; 200]].concat()).unwrap(),
        "not a wasmux cache entry",
    );
}

#[test]
fn an_entry_replaced_by_a_link_to_a_device_does_not_hang() {
    assert_refused_and_replaced(
        |path| {
            fs::remove_file(path).unwrap();
            std::os::unix::fs::symlink("/dev/zero", path).unwrap();
        },
        "cannot read",
    );
}

#[test]
fn an_artifact_the_engine_refuses_is_recompiled() {
    let (_dir, cache) = fresh();
    let engine = Reverser::default();
    // The reversed bytes start with "refuse": a valid entry the engine will not load.
    let module = wasm(b"esufer");
    load_cached(&engine, &module, Some(&cache)).unwrap();
    let (_, event) = load_cached(&engine, &module, Some(&cache)).unwrap();
    assert!(
        matches!(&event, CacheEvent::Replaced(r) if r.contains("engine refused")),
        "{event:?}"
    );
    assert_eq!(engine.compiles.load(Ordering::SeqCst), 2);
}

#[test]
fn a_vanished_directory_costs_the_cache_not_the_run() {
    let (_dir, cache) = fresh();
    fs::remove_dir(cache.dir()).unwrap();
    let (loaded, event) = load_cached(&Reverser::default(), &wasm(b"m"), Some(&cache)).unwrap();
    assert_eq!(loaded, Loaded(b"m".to_vec()));
    assert!(
        matches!(&event, CacheEvent::NotStored(r) if r.contains("writing to")),
        "{event:?}"
    );
    assert!(event.is_warning());
}

#[test]
fn the_directory_is_made_private_and_must_be_ours() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
    PrecompileCache::open(&open).unwrap();
    assert_eq!(
        fs::metadata(&open).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let nested = dir.path().join("a/b/c");
    PrecompileCache::open(&nested).unwrap();
    assert!(nested.is_dir());

    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    let err = PrecompileCache::open(&file).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn processes_filling_one_entry_at_once_leave_a_whole_entry() {
    let (_dir, cache) = fresh();
    let module = wasm(&[42u8; 256 * 1024]);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let engine = Reverser::default();
                for _ in 0..20 {
                    let (loaded, event) = load_cached(&engine, &module, Some(&cache)).unwrap();
                    assert_eq!(loaded.0.len(), 256 * 1024);
                    assert!(!event.is_warning(), "{event:?}");
                }
            });
        }
    });
    let names: Vec<_> = fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temporary files left behind: {names:?}");
}

/// Stores `modules` through the test engine, each one's last use `age` seconds ago.
fn stored(cache: &PrecompileCache, modules: &[(&[u8], u64)]) {
    let engine = Reverser::default();
    for (bytes, age) in modules {
        load_cached(&engine, &wasm(bytes), Some(cache)).unwrap();
        let used = SystemTime::now() - Duration::from_secs(*age);
        let file = fs::File::open(cache.entry_path(&key_of(bytes))).unwrap();
        file.set_modified(used).unwrap();
    }
}

#[test]
fn the_listing_says_what_each_entry_was_compiled_from() {
    let (_dir, cache) = fresh();
    stored(&cache, &[(b"newer", 10), (b"older", 100)]);
    let listed = cache.list().unwrap();
    let keys: Vec<_> = listed.iter().map(|e| e.key.clone()).collect();
    assert_eq!(
        keys,
        [key_of(b"older").to_string(), key_of(b"newer").to_string()]
    );
    let info = listed[0].info.as_ref().unwrap();
    assert_eq!(
        (info.engine.as_str(), info.engine_version.as_str()),
        ("reverser", "1")
    );
    assert_eq!(info.fingerprint, FINGERPRINT);
    assert_eq!(info.module, blake3::hash(b"older").to_hex().to_string());
    assert_eq!(info.wasmux, env!("CARGO_PKG_VERSION"));
    assert!(listed[0].size > 5);
}

#[test]
fn a_hit_marks_its_entry_used() {
    let (_dir, cache) = fresh();
    stored(&cache, &[(b"module", 3600)]);
    load_cached(&Reverser::default(), &wasm(b"module"), Some(&cache)).unwrap();
    let last_use = cache.list().unwrap()[0].last_use;
    assert!(last_use.elapsed().unwrap() < Duration::from_secs(60));
}

#[test]
fn verify_removes_and_reports_a_damaged_entry_and_keeps_the_sound_ones() {
    let (_dir, cache) = fresh();
    stored(&cache, &[(b"sound", 0), (b"damaged", 0)]);
    let damaged = cache.entry_path(&key_of(b"damaged"));
    let mut bytes = fs::read(&damaged).unwrap();
    bytes[1] ^= 1;
    fs::write(&damaged, bytes).unwrap();
    // A sound entry under another entry's name is as wrong as a damaged one.
    let renamed = cache.dir().join(format!("{}.bin", "0".repeat(64)));
    fs::copy(cache.entry_path(&key_of(b"sound")), &renamed).unwrap();
    let report = cache.verify().unwrap();
    let mut removed: Vec<_> = report
        .removed
        .iter()
        .map(|r| (r.path.clone(), r.reason.clone()))
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        [
            (renamed.clone(), Rejection::Foreign.to_string()),
            (damaged.clone(), Rejection::Corrupt.to_string()),
        ]
    );
    assert_eq!(report.kept, 1);
    assert!(!damaged.exists() && !renamed.exists());
    assert!(cache.entry_path(&key_of(b"sound")).exists());
}

#[test]
fn prune_drops_other_engine_versions_first_then_the_least_recently_used() {
    let (_dir, cache) = fresh();
    stored(
        &cache,
        &[(b"oldest", 300), (b"middle", 200), (b"newest", 100)],
    );
    let size = cache.list().unwrap()[0].size;
    let newer_engine = Descriptor {
        version: "2",
        ..TEST_ENGINE
    };
    // This build's reverser is version 2: every entry is stale.
    let stale = cache
        .prune(&PrunePolicy::for_engines([&newer_engine]))
        .unwrap();
    assert_eq!(stale.removed.len(), 3, "{stale:?}");
    assert!(
        stale
            .removed
            .iter()
            .all(|r| r.reason.contains("another version"))
    );

    stored(
        &cache,
        &[(b"oldest", 300), (b"middle", 200), (b"newest", 100)],
    );
    let policy = PrunePolicy {
        max_size: Some(2 * size),
        ..PrunePolicy::for_engines([&TEST_ENGINE])
    };
    let report = cache.prune(&policy).unwrap();
    assert_eq!(report.removed.len(), 1);
    assert_eq!(report.removed[0].path, cache.entry_path(&key_of(b"oldest")));
    assert_eq!((report.kept, report.kept_bytes), (2, 2 * size));
    let aged = PrunePolicy {
        older_than: Some(Duration::from_secs(150)),
        ..PrunePolicy::default()
    };
    let report = cache.prune(&aged).unwrap();
    assert_eq!(report.removed.len(), 1);
    assert_eq!(report.removed[0].path, cache.entry_path(&key_of(b"middle")));
    assert_eq!(report.kept, 1);
}

#[test]
fn a_write_over_the_cap_evicts_the_least_recently_used() {
    let (_dir, cache) = fresh();
    stored(&cache, &[(b"first module", 300), (b"second module", 200)]);
    let size = cache.list().unwrap()[0].size;
    let capped = cache.clone().with_max_size(Some(2 * size + size / 2));
    stored(&capped, &[(b"third module", 0)]);
    let left: Vec<_> = capped.list().unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(
        left,
        [
            key_of(b"second module").to_string(),
            key_of(b"third module").to_string()
        ]
    );
}

#[test]
fn the_cap_comes_from_the_environment_and_nonsense_is_an_error() {
    let var = |value: &'static str| move |name: &str| (name == MAX_SIZE_VAR).then(|| value.into());
    assert_eq!(max_size_from(|_| None).unwrap(), Some(DEFAULT_MAX_SIZE));
    assert_eq!(max_size_from(var("500m")).unwrap(), Some(500 << 20));
    assert_eq!(max_size_from(var("none")).unwrap(), None);
    let err = max_size_from(var("lots")).unwrap_err().to_string();
    assert!(err.contains(MAX_SIZE_VAR), "{err}");
}

/// The hash mark on the entry for `bytes`, if any.
fn hash_mark(cache: &PrecompileCache, bytes: &[u8]) -> Option<String> {
    let path = cache.entry_path(&key_of(bytes));
    let mut mark = [0u8; 96];
    let len = rustix::fs::getxattr(&path, "user.wasmux.hashed", &mut mark).ok()?;
    Some(String::from_utf8(mark[..len].to_vec()).unwrap())
}

/// Damages the payload of the entry for `bytes` in place (a bit of byte `at` flipped),
/// and gives the file back the modification time it had when `keep_time` is set.
fn damage_in_place(cache: &PrecompileCache, bytes: &[u8], at: usize, keep_time: bool) {
    let path = cache.entry_path(&key_of(bytes));
    let modified = fs::metadata(&path).unwrap().modified().unwrap();
    let mut entry = fs::read(&path).unwrap();
    entry[at] ^= 0x40;
    fs::write(&path, entry).unwrap();
    if keep_time {
        fs::File::open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }
}

#[test]
fn an_entry_is_hashed_once_until_its_file_changes() {
    let (_dir, cache) = fresh();
    let engine = Reverser::default();
    let module = wasm(b"module");
    // Written 30 s ago: settled, and used too recently for the hit to renew its mark.
    stored(&cache, &[(b"module", 30)]);
    assert_eq!(hash_mark(&cache, b"module"), None);
    assert_eq!(
        load_cached(&engine, &module, Some(&cache)).unwrap().1,
        CacheEvent::Hit
    );
    let mark = hash_mark(&cache, b"module").expect("a hashed, settled entry is marked");
    assert!(mark.starts_with("v1 size="), "{mark}");
    // The mark is what a hit trusts: damage that keeps the size and time goes unseen
    // (the documented limit: the hash guards against writes, not against bit rot
    // after the first hash) ...
    damage_in_place(&cache, b"module", 0, true);
    let (loaded, event) = load_cached(&engine, &module, Some(&cache)).unwrap();
    assert_eq!(event, CacheEvent::Hit);
    assert_ne!(loaded, Loaded(b"module".to_vec()));
    // ... and any write that moves the time is hashed again and refused.
    damage_in_place(&cache, b"module", 1, false);
    match load_cached(&engine, &module, Some(&cache)).unwrap() {
        (loaded, CacheEvent::Replaced(reason)) => {
            assert!(reason.contains("integrity hash mismatch"), "{reason}");
            assert_eq!(loaded, Loaded(b"module".to_vec()));
        }
        other => panic!("expected the damaged entry replaced, got {other:?}"),
    }
}

#[test]
fn an_entry_changed_within_the_timestamp_resolution_is_not_marked() {
    let (_dir, cache) = fresh();
    let engine = Reverser::default();
    let module = wasm(b"module");
    assert_eq!(
        load_cached(&engine, &module, Some(&cache)).unwrap().1,
        CacheEvent::Stored
    );
    assert_eq!(
        load_cached(&engine, &module, Some(&cache)).unwrap().1,
        CacheEvent::Hit
    );
    assert_eq!(hash_mark(&cache, b"module"), None);
}
