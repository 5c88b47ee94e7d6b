//! Cold start, side by side for every compiled-in engine, in one run:
//! (a) bytes → compile → run hello; (b) precompile cache hit → run; (c) a prepared
//! (loaded) module → run; (d) raw wasmtime taking the same steps as (a)-(c), so
//! `crates/wasmux-benches/report.py` can give wasmux's overhead as a ratio. (e) is
//! `memory_per_instance`.

// Benchmark code: a failed setup should stop the run loudly.
#![allow(clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use wasmux::{CacheEvent, DynEngine, PrecompileCache, RunControl, RunSpec, Support};
use wasmux_benches::raw_wasmtime::RawWasmtime;
use wasmux_conformance::workload::{fresh_spec, hello_spec};

/// Every engine to measure: the registry's, plus wasmtime with its pooling allocator.
fn engines() -> Vec<(String, Box<dyn DynEngine>)> {
    let mut engines: Vec<(String, Box<dyn DynEngine>)> = wasmux::ENGINES
        .iter()
        .map(|entry| {
            let engine = wasmux::engine_by_name(entry.name).expect("the engine starts");
            (entry.name.to_owned(), engine)
        })
        .collect();
    #[cfg(feature = "wasmtime")]
    engines.push((
        "wasmtime-pooled".into(),
        wasmux::engine_with_options("wasmtime", &wasmux::EngineOptions::new().with_pooling(100))
            .expect("a pooled engine"),
    ));
    engines
}

fn run_ok(module: &wasmux::LoadedModule, spec: RunSpec) {
    let status = module.run(spec, &RunControl::new()).expect("hello runs");
    assert!(status.success(), "hello exited {status}");
}

fn group<'a>(c: &'a mut Criterion, name: &str, slow: bool) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    if slow {
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(8));
    } else {
        group.measurement_time(Duration::from_secs(3));
    }
    group.warm_up_time(Duration::from_millis(500));
    group
}

fn compile_and_run(c: &mut Criterion) {
    let template = hello_spec();
    let mut group = group(c, "a-compile-run", true);
    for (name, engine) in engines() {
        group.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter(|| {
                let module = engine.load(&template.wasm).expect("hello loads");
                run_ok(&module, fresh_spec(&template));
            })
        });
    }
    let raw = RawWasmtime::new(None);
    group.bench_function(BenchmarkId::from_parameter("raw-wasmtime"), |b| {
        b.iter(|| {
            let pre = raw.pre(&raw.compile(&template.wasm.bytes));
            assert_eq!(raw.run(&pre, &fresh_spec(&template)), 0);
        })
    });
    group.finish();
}

fn cache_hit_and_run(c: &mut Criterion) {
    let template = hello_spec();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache = PrecompileCache::open(dir.path()).expect("a cache");
    let mut group = group(c, "b-cache-hit-run", false);
    for (name, engine) in engines() {
        if let Support::Unsupported(reason) = engine.precompile() {
            eprintln!("b-cache-hit-run/{name}: unsupported: {reason}");
            continue;
        }
        engine
            .load_cached(&template.wasm, Some(&cache))
            .expect("hello loads");
        group.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter(|| {
                let (module, event) = engine
                    .load_cached(&template.wasm, Some(&cache))
                    .expect("hello loads");
                assert_eq!(event, CacheEvent::Hit);
                run_ok(&module, fresh_spec(&template));
            })
        });
    }
    for (name, pool) in [("raw-wasmtime", None), ("raw-wasmtime-pooled", Some(100))] {
        let raw = RawWasmtime::new(pool);
        let native = dir.path().join(format!("{name}.cwasm"));
        std::fs::write(&native, raw.serialize(&raw.compile(&template.wasm.bytes)))
            .expect("the raw artifact is saved");
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let pre = raw.pre(&raw.deserialize_file(&native));
                assert_eq!(raw.run(&pre, &fresh_spec(&template)), 0);
            })
        });
    }
    group.finish();
}

fn prepared_run(c: &mut Criterion) {
    let template = hello_spec();
    let mut group = group(c, "c-prepared-run", false);
    for (name, engine) in engines() {
        let module = engine.load(&template.wasm).expect("hello loads");
        group.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter(|| run_ok(&module, fresh_spec(&template)))
        });
    }
    for (name, pool) in [("raw-wasmtime", None), ("raw-wasmtime-pooled", Some(100))] {
        let raw = RawWasmtime::new(pool);
        let pre = raw.pre(&raw.compile(&template.wasm.bytes));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| assert_eq!(raw.run(&pre, &fresh_spec(&template)), 0))
        });
    }
    group.finish();
}

criterion_group!(cold_start, compile_and_run, cache_hit_and_run, prepared_run);
criterion_main!(cold_start);
