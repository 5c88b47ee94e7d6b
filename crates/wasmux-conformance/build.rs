//! Builds the guest programs in `guests/` for WASI with a nested cargo, into this
//! crate's OUT_DIR, and tells the crate where they are. Needs the targets the README's
//! set-up installs: `rustup target add wasm32-wasip1 wasm32-wasip2`.

// A build script reports failure by panicking, with the message cargo shows.
#![allow(clippy::expect_used)]

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Names the toolchain that builds the guests, when not the one building this crate.
const GUESTS_TOOLCHAIN: &str = "WASMUX_GUESTS_TOOLCHAIN";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let guests = manifest.join("guests");
    for watched in [
        "src",
        "Cargo.toml",
        ".cargo/config.toml",
        "http-hello/src",
        "http-hello/Cargo.toml",
        "http-hello-p3/src",
        "http-hello-p3/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", guests.join(watched).display());
    }
    let target_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("guests");
    // The toolchain building this crate builds the guests, unless
    // WASMUX_GUESTS_TOOLCHAIN names another (through rustup): a toolchain without the
    // wasm32 targets, as cargo fuzz's nightly may be, borrows one that has them.
    println!("cargo:rerun-if-env-changed={GUESTS_TOOLCHAIN}");
    let toolchain = env::var_os(GUESTS_TOOLCHAIN);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let nested = || match &toolchain {
        Some(toolchain) => {
            let mut rustup = Command::new("rustup");
            // The compilers cargo told this script about are the outer toolchain's.
            rustup
                .arg("run")
                .arg(toolchain)
                .arg("cargo")
                .env_remove("RUSTC")
                .env_remove("RUSTDOC");
            rustup
        }
        None => Command::new(&cargo),
    };
    // wasip2: the components; `http-hello` (a wasi:http proxy) and `http-hello-p3` (its
    // WASI 0.3 counterpart) are packages of their own.
    let components = [
        "--bin",
        "hello",
        "--bin",
        "net",
        "--bin",
        "http-hello",
        "--bin",
        "http-hello-p3",
    ];
    let packages = [
        "-p",
        "wasmux-guests",
        "-p",
        "http-hello",
        "-p",
        "http-hello-p3",
    ];
    for (target, only) in [("wasm32-wasip1", None), ("wasm32-wasip2", Some(components))] {
        let mut build = nested();
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
