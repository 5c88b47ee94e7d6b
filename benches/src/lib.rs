//! What the benches share: the hello bundle as a spec to run again and again, and raw
//! wasmtime doing the same steps as wasmux, as the baseline of its overhead.

// Benchmark support: a failure to set up should stop the bench loudly.
#![allow(clippy::expect_used)]

pub mod raw_wasmtime;
pub mod workload;
