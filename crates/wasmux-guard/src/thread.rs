//! A run on a thread of its own, for engines whose state cannot cross threads or whose
//! interpreter needs a native stack larger than the caller's.

use wasmux_core::{Error, RawOutcome, RawRun, Result, TrapKind};

/// Runs `run` to completion on a new thread named `wasmux-<engine>` with a native
/// stack of `stack` bytes. A panic on that thread is a trap of the run, never the
/// caller's panic.
pub(crate) fn on_own_thread<F>(engine: &str, stack: usize, run: F) -> Result<RawRun>
where
    F: FnOnce() -> Result<RawRun> + Send,
{
    std::thread::scope(|scope| {
        let runner = std::thread::Builder::new()
            .name(format!("wasmux-{engine}"))
            .stack_size(stack)
            .spawn_scoped(scope, run)
            .map_err(|e| Error::io(format!("starting the {engine} run thread"), e))?;
        runner.join().unwrap_or_else(|_| {
            Ok(RawRun {
                outcome: RawOutcome::Trap(
                    TrapKind::Other,
                    format!("the {engine} run thread panicked"),
                ),
                memory_denied: false,
            })
        })
    })
}
