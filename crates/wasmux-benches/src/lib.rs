//! What the benches share beyond `wasmux_conformance::workload`: raw wasmtime doing the
//! same steps as wasmux, as the baseline of its overhead.

// Benchmark support: a failure to set up should stop the bench loudly.
#![allow(clippy::expect_used)]

pub mod raw_wasmtime;
