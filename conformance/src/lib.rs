//! The wasmux conformance suite: OCI bundles every engine must run alike (README, "Conformance").
//!
//! [`cases::ALL`] is the suite; [`suite::run_suite`] runs it against one engine, and
//! `tests/suite.rs` runs it against every engine compiled in and writes the
//! [`matrix::Matrix`]. The guests come from `guests/`, built by this crate's build script.

pub mod bundle;
pub mod cases;
pub mod guests;
pub mod matrix;
pub mod suite;
pub mod workload;

pub use bundle::BundleBuilder;
