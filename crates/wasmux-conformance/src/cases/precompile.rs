//! The precompile cache on a real engine: a hit runs exactly like a fresh compile, and
//! a damaged entry is refused and replaced, never run.

use wasmux::{CacheEvent, ExitStatus, PrecompileCache};

use super::probe;
use crate::suite::{Check, Ctx, Ran, RunOptions};

pub fn cache_round_trip(ctx: &Ctx) -> Check {
    let cache = PrecompileCache::open(ctx.dir.join("cache"))
        .map_err(|e| format!("opening the cache: {e}"))?;
    let bundle = ctx.write("primes", &probe(&["primes", "20000"]));
    let run = || {
        ctx.run_with(
            &bundle,
            RunOptions {
                cache: Some(cache.clone()),
                ..RunOptions::default()
            },
        )
    };
    let expect = |ran: &Ran, event: &str| -> Check {
        ran.expect_status(&ExitStatus::Exited(0))?;
        ran.expect_stdout(b"2262 4068436487020294991\n")?;
        match &ran.cache_event {
            Some(got) if format!("{got:?}").starts_with(event) => Ok(()),
            got => Err(format!("cache: expected {event}, got {got:?}")),
        }
    };
    expect(&run(), "Stored")?;
    expect(&run(), "Hit")?;

    let entries: Vec<_> = std::fs::read_dir(cache.dir())
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let [entry] = entries.as_slice() else {
        return Err(format!("expected one cache entry, found {entries:?}"));
    };
    let mut bytes = std::fs::read(entry).map_err(|e| e.to_string())?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(entry, bytes).map_err(|e| e.to_string())?;
    let ran = run();
    expect(&ran, "Replaced")?;
    if !matches!(&ran.cache_event, Some(CacheEvent::Replaced(r)) if r.contains("integrity")) {
        return Err(format!(
            "expected an integrity refusal, got {:?}",
            ran.cache_event
        ));
    }
    expect(&run(), "Hit")
}
