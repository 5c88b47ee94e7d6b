//! The conformance suite, one test per engine × case (`ENGINE/CASE`), so one runs by name:
//! `cargo test -p wasmux-conformance --test suite -- wasmer/ro-via-dotdot`. A case an
//! engine declares it cannot run is reported as ignored. A hung case fails on its own.
//! When every case ran, the engine × case matrix is printed and written to
//! `<target>/conformance/matrix.md` (and spliced into docs/conformance.md with
//! `WASMUX_UPDATE_MATRIX=1`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Trial};
use wasmux::{DynEngine, EngineOptions, Tier};
use wasmux_conformance::cases::ALL;
use wasmux_conformance::matrix::{Matrix, splice_matrix};
use wasmux_conformance::suite::{Verdict, run_case, unsupported};

/// `$CARGO_TARGET_DIR/conformance`, or the workspace's `target/conformance`.
fn output_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("conformance")
}

/// Each case's verdict, by engine and case name.
type Verdicts = Arc<Mutex<Vec<(&'static str, &'static str, Verdict)>>>;

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // Cases check kills, deadlines and memory: one at a time unless asked otherwise.
    args.test_threads.get_or_insert(1);
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

    let verdicts: Verdicts = Arc::default();
    let mut trials = Vec::new();
    let variants = variants();
    for (label, engine) in &variants {
        let label: &'static str = label;
        for case in ALL {
            let name = format!("{label}/{}", case.name);
            if let Some(reason) = unsupported(engine.as_ref(), case.needs) {
                record(&verdicts, label, case.name, Verdict::Unsupported(reason));
                trials.push(Trial::test(name, || Ok(())).with_ignored_flag(true));
                continue;
            }
            let (engine, verdicts) = (engine.clone(), verdicts.clone());
            let dir = out.join("bundles").join(label).join(case.name);
            trials.push(Trial::test(name, move || {
                let verdict = run_case(engine, case, dir);
                record(&verdicts, label, case.name, verdict.clone());
                match verdict {
                    Verdict::Fail(why) => Err(why.into()),
                    Verdict::Pass | Verdict::Unsupported(_) => Ok(()),
                }
            }));
        }
    }
    let total = trials.len();
    let conclusion = libtest_mimic::run(&args, trials);
    let ran_all = conclusion.num_filtered_out == 0
        && conclusion.num_passed + conclusion.num_failed + conclusion.num_ignored == total as u64;
    if ran_all {
        let labels: Vec<&str> = variants.iter().map(|(label, _)| *label).collect();
        report(&verdicts, &labels, &out);
    }
    conclusion.exit_code()
}

/// Every compiled-in engine, and wasmtime again on its baseline tier (Winch), which the
/// first start of a big module runs on.
fn variants() -> Vec<(&'static str, Arc<dyn DynEngine>)> {
    let start = |name: &str, options: &EngineOptions| -> Arc<dyn DynEngine> {
        Arc::from(
            wasmux::engine_with_options(name, options)
                .unwrap_or_else(|e| panic!("starting {name}: {e}")),
        )
    };
    let mut variants = Vec::new();
    for entry in wasmux::ENGINES {
        variants.push((entry.name, start(entry.name, &EngineOptions::default())));
        if entry.name == "wasmtime" {
            let winch = EngineOptions::new().with_tier(Tier::Baseline);
            variants.push(("wasmtime-winch", start(entry.name, &winch)));
        }
    }
    variants
}

fn record(verdicts: &Verdicts, engine: &'static str, case: &'static str, verdict: Verdict) {
    verdicts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((engine, case, verdict));
}

/// The matrix in engine and case order: printed, written, spliced into docs/conformance.md if asked.
fn report(verdicts: &Verdicts, labels: &[&'static str], out: &std::path::Path) {
    let cells = verdicts.lock().unwrap_or_else(|p| p.into_inner());
    let mut matrix = Matrix::default();
    for &label in labels {
        let results = ALL
            .iter()
            .filter_map(|case| {
                cells
                    .iter()
                    .find(|(e, c, _)| *e == label && *c == case.name)
                    .map(|(_, c, v)| (*c, v.clone()))
            })
            .collect();
        matrix.add(label, results);
    }
    let path = out.join("matrix.md");
    matrix
        .write(&path)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    let _ = writeln!(
        std::io::stderr(),
        "\n{}\n(written to {})",
        matrix.to_markdown(),
        path.display()
    );
    if std::env::var_os("WASMUX_UPDATE_MATRIX").is_some() {
        let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/conformance.md");
        let text =
            std::fs::read_to_string(&doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
        let updated = splice_matrix(&text, &matrix.to_markdown())
            .unwrap_or_else(|| panic!("docs/conformance.md has no matrix markers"));
        std::fs::write(&doc, updated).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
    }
}
