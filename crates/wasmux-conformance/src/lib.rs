//! The wasmux conformance suite: OCI bundles every engine must run alike (docs/conformance.md).
//!
//! [`cases::ALL`] is the suite; [`suite::run_case`] runs one case on one engine, and
//! `tests/suite.rs` runs every case on every engine compiled in and writes the
//! [`matrix::Matrix`]. The guests come from `guests/`, built by this crate's build script.

pub mod bundle;
pub mod cases;
pub mod differential;
pub mod e2e;
pub mod guests;
pub mod matrix;
pub mod reference;
pub mod suite;
pub mod wasi_diff;
pub mod wasm_bytes;
pub mod workload;

pub use bundle::BundleBuilder;
