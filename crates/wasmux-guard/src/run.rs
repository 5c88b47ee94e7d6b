//! The shape of every guarded run: the host, the engine's instantiate-and-call, the
//! outcome.

use wasmux_core::{Error, RawRun, Result, RunControl, RunSpec};

use crate::host::{Ended, GuardedHost};
use crate::instrument::InitialSize;

/// What a guarded run needs to know about the loaded module.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModuleFacts<'m> {
    /// The engine's name, for spans and messages.
    pub(crate) engine: &'static str,
    /// Where the module came from, for errors.
    pub(crate) origin: &'m str,
    /// The module's initial memory and tables, checked against the limit before
    /// instantiating.
    pub(crate) initial: InitialSize,
    /// The depth the module was instrumented with, if any.
    pub(crate) max_depth: Option<u32>,
}

/// The engine's part of a guarded run, called with the run's host and the entry
/// function's name: instantiate, call the entry, and say how the call ended.
/// Instantiation failures are [`instantiate_failed`], entry failures [`entry_failed`].
pub(crate) fn run_guarded<F>(
    module: ModuleFacts<'_>,
    mut spec: RunSpec,
    control: &RunControl,
    instantiate_and_call: F,
) -> Result<RawRun>
where
    F: FnOnce(&mut GuardedHost<'_>, &str) -> Result<Ended>,
{
    let mut host = match GuardedHost::new(&mut spec, control, module.initial, module.max_depth)? {
        Ok(host) => host,
        Err(refused) => return Ok(refused),
    };
    let entry = spec.entry.as_deref().unwrap_or("_start");
    let ended = instantiate_and_call(&mut host, entry)?;
    Ok(host.finish(ended))
}

/// The error for a module the engine cannot instantiate (a link error of the run).
pub(crate) fn instantiate_failed(
    module: ModuleFacts<'_>,
    message: impl std::fmt::Display,
) -> Error {
    Error::link(
        module.origin,
        format!(
            "{} cannot instantiate this module: {message}",
            module.engine
        ),
    )
}

/// The error for an entry function that is missing or cannot be called.
pub(crate) fn entry_failed(entry: &str, reason: String) -> Error {
    Error::EntryFunction {
        name: entry.to_owned(),
        reason,
    }
}
