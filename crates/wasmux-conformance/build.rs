//! Builds the guest programs in `guests/` for WASI with a nested cargo, into this
//! crate's OUT_DIR, and tells the crate where they are. Needs the targets the README's
//! set-up installs: `rustup target add wasm32-wasip1 wasm32-wasip2`.

// A build script reports failure by panicking, with the message cargo shows.
#![allow(clippy::expect_used)]

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let guests = manifest.join("guests");
    for watched in [
        "src",
        "Cargo.toml",
        ".cargo/config.toml",
        "http-hello/src",
        "http-hello/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", guests.join(watched).display());
    }
    let target_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("guests");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // wasip2: the components; `http-hello` (a wasi:http proxy) is a package of its own.
    let components = ["--bin", "hello", "--bin", "net", "--bin", "http-hello"];
    let packages = ["-p", "wasmux-guests", "-p", "http-hello"];
    for (target, only) in [("wasm32-wasip1", None), ("wasm32-wasip2", Some(components))] {
        let mut build = Command::new(&cargo);
        build
            .current_dir(&guests)
            .args(["build", "--release", "--target", target, "--target-dir"])
            .arg(&target_dir);
        if let Some(bins) = only {
            build.args(bins).args(packages);
        }
        // The outer build's flags and target directory are not the guests'.
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTC_WRAPPER",
        ] {
            build.env_remove(var);
        }
        let status = build.status().expect("running cargo for the guests");
        assert!(
            status.success(),
            "building the conformance guests for {target} failed; if the target is missing, run: \
             rustup target add wasm32-wasip1 wasm32-wasip2"
        );
    }
    println!("cargo:rustc-env=WASMUX_GUESTS_DIR={}", target_dir.display());
}
