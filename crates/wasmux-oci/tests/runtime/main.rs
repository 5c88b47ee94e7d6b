//! wasmux-oci end to end: its own lifecycle, then the real podman and containerd
//! driving it (those two skip, saying so, where the tools are not installed, unless
//! `WASMUX_REQUIRE_E2E=1`, which `.ci/run` sets).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod containerd;
mod docker;
mod e2e;
mod harness;
mod hostile;
mod lifecycle;
mod podman;
