//! Workloads for runs repeated many times (benches, stress tests): the repository's
//! hello bundle (`examples/hello`) mapped once and turned into a fresh spec per run, a
//! guest as a loaded binary, and what the process holds while they run.

use std::path::{Path, PathBuf};

use wasmux::{Bundle, RunSpec, Sniffed, StdioStream, WasmBinary};

/// The hello example bundle shipped with the repository.
pub fn hello_bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello")
}

/// The hello bundle's spec, as a runtime maps it once before running.
pub fn hello_spec() -> RunSpec {
    Bundle::load(hello_bundle())
        .and_then(|bundle| bundle.run_spec())
        .unwrap_or_else(|e| panic!("the hello example bundle does not map: {e}"))
}

/// A spec for one more run of `template`: same module, argv, env, cwd and mounts,
/// with stdio on `/dev/null` so the terminal is not part of the measurement.
pub fn fresh_spec(template: &RunSpec) -> RunSpec {
    let mut spec = RunSpec::new(template.wasm.clone());
    spec.args.clone_from(&template.args);
    spec.env.clone_from(&template.env);
    spec.cwd.clone_from(&template.cwd);
    spec.mounts.clone_from(&template.mounts);
    spec.stdio.stdin = StdioStream::Null;
    spec.stdio.stdout = StdioStream::Null;
    spec.stdio.stderr = StdioStream::Null;
    spec
}

/// The built guest `name` (see [`crate::guests::core_module`]), read and sniffed as a
/// runtime would before loading it.
pub fn core_module_binary(name: &str) -> WasmBinary {
    let path = crate::guests::core_module(name);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading guest {}: {e}", path.display()));
    match wasmux::sniff(bytes, &format!("{name}.wasm")) {
        Ok(Sniffed::Wasm(wasm)) => wasm,
        other => panic!("guest {name} is not Wasm: {other:?}"),
    }
}

/// The process's resident set, in bytes.
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm")
        .unwrap_or_else(|e| panic!("reading /proc/self/statm: {e}"));
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resident page count in {statm:?}"));
    pages * rustix::param::page_size() as u64
}

/// How many file descriptors the process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap_or_else(|e| panic!("listing /proc/self/fd: {e}"))
        .count()
}
