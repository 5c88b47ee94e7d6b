//! The `wasmux` binary end to end, in one test binary (each links every engine):
//! running bundles and modules ([`run`]) and the precompile cache ([`cache`]).

// Test code: a failed expectation should panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache;
mod run;
mod serve;
mod support;
