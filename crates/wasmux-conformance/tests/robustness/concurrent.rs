//! 64 concurrent runs of one loaded module on every engine, each echoing its own
//! 64 KiB of stdin: every output must be exactly its own input, with no crosstalk.

use std::io::{Read, Seek, Write};

use wasmux::{RunControl, RunSpec, StdioStream};
use wasmux_conformance::workload::core_module_binary;

const RUNS: usize = 64;

fn input(i: usize) -> Vec<u8> {
    (0..64 * 1024)
        .map(|n: usize| (n.wrapping_mul(31) ^ i.wrapping_mul(131)) as u8)
        .collect()
}

#[test]
fn concurrent_runs_each_get_exactly_their_own_output_on_every_engine() {
    let _serial = crate::serial();
    let wasm = core_module_binary("probe");
    for entry in wasmux::ENGINES {
        let engine = wasmux::engine_by_name(entry.name).unwrap();
        let module = engine.load(&wasm).unwrap();
        std::thread::scope(|scope| {
            let runs: Vec<_> = (0..RUNS)
                .map(|i| {
                    let module = &module;
                    let wasm = wasm.clone();
                    scope.spawn(move || {
                        let mut stdin = tempfile::tempfile().unwrap();
                        stdin.write_all(&input(i)).unwrap();
                        stdin.rewind().unwrap();
                        let mut stdout = tempfile::tempfile().unwrap();
                        let mut spec = RunSpec::new(wasm);
                        spec.args = vec!["probe.wasm".into(), "echo".into()];
                        spec.stdio.stdin = StdioStream::from(stdin);
                        spec.stdio.stdout = StdioStream::from(stdout.try_clone().unwrap());
                        let status = module.run(spec, &RunControl::new()).unwrap();
                        let mut got = Vec::new();
                        stdout.rewind().unwrap();
                        stdout.read_to_end(&mut got).unwrap();
                        (status, got)
                    })
                })
                .collect();
            for (i, run) in runs.into_iter().enumerate() {
                let (status, got) = run.join().unwrap();
                assert!(status.success(), "{} run {i}: {status}", entry.name);
                assert!(
                    got == input(i),
                    "{} run {i}: output is not its own input",
                    entry.name
                );
            }
        });
    }
}
