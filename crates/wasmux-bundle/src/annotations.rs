//! The wasmux annotations a workload sets, read the same way by every front door
//! (a bundle's `config.json`, or the annotations the shim was started with).

use std::collections::HashMap;
use std::time::Duration;

use wasmux_core::{EngineOptions, Error, Requested, Result};

use crate::detect::HandlerRequest;

/// The annotation that sets a deadline: the run's (exit 137 past it), or each
/// request's for a served `wasi:http` component (504 past it).
pub const TIMEOUT_ANNOTATION: &str = "wasmux.io/timeout";

/// The annotation that sets engine options for this workload, as a comma-separated
/// list of `key=value` (`tier=baseline,stack-size=1m`: `EngineOptions::set`'s texts).
/// A front door's own options go over it; an unknown key or a bad value is refused by
/// name, and an option the chosen engine lacks is refused by the engine.
pub const ENGINE_OPTIONS_ANNOTATION: &str = "wasmux.io/engine-options";

/// The annotation that sets a CPU time budget (seconds): a run that has used that
/// much CPU is killed with SIGXCPU (exit 152). Time spent waiting does not count.
pub const CPU_TIME_ANNOTATION: &str = "wasmux.io/cpu-time";

type Annotations<'a> = Option<&'a HashMap<String, String>>;

/// What `annotations` ask of the engine: `run.oci.handler`'s engine and the
/// [`ENGINE_OPTIONS_ANNOTATION`]'s options; a bad value is an error naming its
/// annotation.
pub fn requested_by(annotations: Annotations<'_>) -> Result<Requested> {
    Ok(Requested {
        engine: HandlerRequest::from_annotations(annotations)?.engine,
        options: engine_options(annotations)?,
    })
}

/// The [`ENGINE_OPTIONS_ANNOTATION`]'s options (none without it).
pub(crate) fn engine_options(annotations: Annotations<'_>) -> Result<EngineOptions> {
    let Some(list) = annotations.and_then(|a| a.get(ENGINE_OPTIONS_ANNOTATION)) else {
        return Ok(EngineOptions::new());
    };
    EngineOptions::parse_list(list)
        .map_err(|e| Error::InvalidBundle(format!("{ENGINE_OPTIONS_ANNOTATION} {list:?}: {e}")))
}

/// The [`TIMEOUT_ANNOTATION`]'s deadline: the run's, or each request's for a served
/// `wasi:http` component. Seconds, fractions allowed; anything else is refused by name.
pub fn timeout(annotations: Annotations<'_>) -> Result<Option<Duration>> {
    seconds(annotations, TIMEOUT_ANNOTATION)
}

/// The [`CPU_TIME_ANNOTATION`]'s budget, as [`timeout`] reads its deadline.
pub fn cpu_time(annotations: Annotations<'_>) -> Result<Option<Duration>> {
    seconds(annotations, CPU_TIME_ANNOTATION)
}

/// The annotation `name`'s seconds (fractions allowed, above 0), refused by name
/// otherwise.
fn seconds(annotations: Annotations<'_>, name: &str) -> Result<Option<Duration>> {
    let Some(value) = annotations.and_then(|a| a.get(name)) else {
        return Ok(None);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|secs| *secs > 0.0)
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .map(Some)
        .ok_or_else(|| {
            Error::InvalidBundle(format!(
                "{name} {value:?}: expected a number of seconds above 0"
            ))
        })
}
