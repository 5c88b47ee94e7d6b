//! The wasmux conformance suite's building blocks: the guest programs (built from
//! `guests/` by this crate's build script) and a builder for real OCI bundles that use them.

pub mod bundle;
pub mod guests;

pub use bundle::BundleBuilder;
