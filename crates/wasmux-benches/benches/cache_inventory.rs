//! The precompile cache's upkeep at node scale: listing, pruning to half and verifying
//! a cache of N entries (N = 1,000 entries of 64 KiB, 64 MiB in all; entries of that
//! size keep the fill quick, and listing and pruning read only trailers and metadata,
//! so their cost grows with N, not with entry size). The hit path's own cost is
//! `cold_start`'s `b-cache-hit-run`.
//!
//! `cargo bench -p wasmux-benches --bench cache_inventory`

// Benchmark code: a failed setup should stop the run loudly.
#![allow(clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use wasmux::backend::ArtifactKey;
use wasmux::inventory::PrunePolicy;
use wasmux::{ArtifactStore, PrecompileCache};

const ENTRIES: usize = 1000;
const ENTRY_BYTES: usize = 64 << 10;

/// A cache of [`ENTRIES`] entries under `dir`, each the "code" of its own module.
fn filled(dir: &std::path::Path) -> PrecompileCache {
    let cache = PrecompileCache::open(dir)
        .expect("a cache directory")
        .with_max_size(None);
    let engine = wasmux::ENGINES[0].descriptor;
    let payload = vec![0x5a; ENTRY_BYTES];
    for i in 0..ENTRIES {
        let module = (i as u64).to_le_bytes();
        let origin = wasmux::backend::ArtifactOrigin {
            engine,
            fingerprint: "bench",
            module: &module,
        };
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&module);
        cache
            .write(&ArtifactKey::from_bytes(key), &origin, &payload)
            .expect("an entry written");
    }
    cache
}

fn inventory(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache-inventory-1000");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache = filled(&dir.path().join("full"));
    group.bench_function("list", |b| b.iter(|| cache.list().expect("a listing")));
    group.bench_function("verify", |b| b.iter(|| cache.verify().expect("a verify")));
    let total = (cache.list().expect("a listing").len() * ENTRY_BYTES) as u64;
    group.bench_function("prune-to-half", |b| {
        b.iter_batched(
            || {
                let scratch = tempfile::tempdir_in(dir.path()).expect("a scratch cache");
                let cache = filled(scratch.path());
                (scratch, cache)
            },
            |(_scratch, cache)| {
                let policy = PrunePolicy {
                    max_size: Some(total / 2),
                    ..PrunePolicy::default()
                };
                cache.prune(&policy).expect("a prune")
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, inventory);
criterion_main!(benches);
