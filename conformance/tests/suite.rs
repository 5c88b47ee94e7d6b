//! Runs the whole conformance suite against every compiled-in engine, prints the engine ×
//! case matrix, writes it to `<target>/conformance/matrix.md`, and fails on any FAIL.

use std::io::Write;
use std::path::PathBuf;

use wasmux_conformance::cases::ALL;
use wasmux_conformance::matrix::{Matrix, splice_readme};
use wasmux_conformance::suite::run_suite;

/// `$CARGO_TARGET_DIR/conformance`, or the workspace's `target/conformance`.
fn output_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("conformance")
}

#[test]
fn every_engine_passes_the_conformance_suite() {
    assert!(!wasmux::ENGINES.is_empty(), "no engine compiled in");
    std::fs::create_dir_all(output_dir()).unwrap_or_else(|e| panic!("creating the output: {e}"));
    let out = output_dir()
        .canonicalize()
        .unwrap_or_else(|e| panic!("resolving the output directory: {e}"));
    // The `escapes` case also tries the host process's working directory (where an
    // engine's own WASI, such as wasm3's, would resolve relative paths): give it a secret.
    let host_cwd = tempfile::tempdir().unwrap_or_else(|e| panic!("a working directory: {e}"));
    std::fs::write(host_cwd.path().join("secret"), b"host cwd secret")
        .unwrap_or_else(|e| panic!("writing the cwd secret: {e}"));
    std::env::set_current_dir(host_cwd.path()).unwrap_or_else(|e| panic!("chdir: {e}"));
    let mut matrix = Matrix::default();
    for entry in wasmux::ENGINES {
        let engine = (entry.create)().unwrap_or_else(|e| panic!("starting {}: {e}", entry.name));
        let started = std::time::Instant::now();
        let results = run_suite(engine.as_ref(), ALL, &out.join("bundles").join(entry.name));
        let _ = writeln!(
            std::io::stderr(),
            "{}: {} cases in {:.1?}",
            entry.name,
            results.len(),
            started.elapsed()
        );
        matrix.add(entry.name, results);
    }
    let path = out.join("matrix.md");
    matrix
        .write(&path)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    // Straight to the process's stderr, past the test harness's capture, so CI logs show it.
    let _ = writeln!(
        std::io::stderr(),
        "\n{}\n(written to {})",
        matrix.to_markdown(),
        path.display()
    );
    if std::env::var_os("WASMUX_UPDATE_README").is_some() {
        update_readme(&matrix);
    }
    let failures = matrix.failures();
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}",
        failures.join("\n")
    );
}

/// Regenerates README.md's matrix section from this run (`WASMUX_UPDATE_README=1`).
fn update_readme(matrix: &Matrix) {
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text =
        std::fs::read_to_string(&readme).unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
    let updated = splice_readme(&text, &matrix.to_markdown())
        .unwrap_or_else(|| panic!("README.md has no matrix markers"));
    std::fs::write(&readme, updated).unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
}
