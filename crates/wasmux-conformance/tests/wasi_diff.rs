//! The WASI preview1 differential suite, one test per engine × scenario
//! (`ENGINE/SCENARIO`): the `wasi_diff` guest's transcript, exit status and the fixture
//! tree it leaves must equal the oracle's, wasmtime-wasi's preview1 run directly
//! (`reference/SCENARIO` checks the oracle itself ran to completion). `cargo test -p wasmux-conformance --test wasi_diff -- wasmer/open`
//! runs one; the differences are printed call by call. With `WASMUX_WASI_DIFF_DUMP=DIR`
//! every transcript is also written to `DIR/ENGINE-SCENARIO.txt`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Trial};
use wasmux_conformance::wasi_diff::{Observed, SCENARIOS, Subject, compare, observe};

/// The oracle's observations, made once per scenario on first use.
type Oracle = Arc<Mutex<HashMap<&'static str, Observed>>>;

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("a scratch directory: {e}"));
    let out: Arc<PathBuf> = Arc::new(out.keep());
    let oracle: Oracle = Arc::default();
    let oracle_of = {
        let (oracle, out) = (oracle.clone(), out.clone());
        move |scenario: &'static str| -> Result<Observed, String> {
            let mut cache = oracle.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(seen) = cache.get(scenario) {
                return Ok(seen.clone());
            }
            let seen = observe(
                Subject::Reference,
                scenario,
                &out.join("reference").join(scenario),
            )?;
            cache.insert(scenario, seen.clone());
            Ok(seen)
        }
    };
    let oracle_of = Arc::new(oracle_of);
    let mut trials = Vec::new();
    for scenario in SCENARIOS {
        let oracle_of = oracle_of.clone();
        trials.push(Trial::test(format!("reference/{scenario}"), move || {
            let oracle = oracle_of(scenario)?;
            match oracle.status.as_str() {
                "exit 0" => Ok(()),
                other => Err(format!(
                    "the oracle did not complete: {other}\n{}",
                    oracle.transcript
                )
                .into()),
            }
        }));
    }
    for entry in wasmux::ENGINES {
        let engine: Arc<dyn wasmux::DynEngine> = Arc::from(
            wasmux::engine_by_name(entry.name)
                .unwrap_or_else(|e| panic!("starting {}: {e}", entry.name)),
        );
        for scenario in SCENARIOS {
            let (engine, oracle_of, out) = (engine.clone(), oracle_of.clone(), out.clone());
            let name = entry.name;
            trials.push(Trial::test(format!("{name}/{scenario}"), move || {
                let oracle = oracle_of(scenario)?;
                let got = observe(
                    Subject::Engine(engine.as_ref()),
                    scenario,
                    &out.join(name).join(scenario),
                )?;
                dump(name, scenario, &got);
                dump("reference", scenario, &oracle);
                compare(name, scenario, &oracle, &got).map_err(Into::into)
            }));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    let _ = std::fs::remove_dir_all(out.as_ref());
    conclusion.exit_code()
}

/// Writes a transcript where `WASMUX_WASI_DIFF_DUMP` asks, for reading them side by side.
fn dump(engine: &str, scenario: &str, seen: &Observed) {
    if let Some(dir) = std::env::var_os("WASMUX_WASI_DIFF_DUMP") {
        let path = PathBuf::from(dir).join(format!("{engine}-{scenario}.txt"));
        let text = format!("{}\n{}\n{}", seen.status, seen.transcript, seen.tree);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
