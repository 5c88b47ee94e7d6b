//! Starting the `wasmux` binary from tests, and reading what it did.

use std::path::Path;
use std::process::{Command, Output};

/// The command, started the way cargo starts this test: through the target's runner
/// when one is set (a WasmEdge build runs under the loader of its own C library, see
/// scripts/wasmedge-env.sh).
pub fn wasmux(args: &[&str]) -> Output {
    wasmux_within(&[], args)
}

/// [`wasmux`], started by `prefix` (a command that execs its arguments).
pub fn wasmux_within(prefix: &[&str], args: &[&str]) -> Output {
    wasmux_command(prefix, args)
        .output()
        .expect("running wasmux")
}

/// The command [`wasmux_within`] runs, to start it and go on.
pub fn wasmux_command(prefix: &[&str], args: &[&str]) -> Command {
    let runner = std::env::var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER").unwrap_or_default();
    let mut words = prefix
        .iter()
        .copied()
        .chain(runner.split_whitespace())
        .chain([env!("CARGO_BIN_EXE_wasmux")]);
    let mut command = Command::new(words.next().expect("a program"));
    command
        .args(words)
        .args(args)
        // Hermetic by default: tests of the cache pass --cache-dir.
        .env("WASMUX_CACHE", "off")
        .env("WASMUX_TEST_HOST_SECRET", "must-not-leak");
    command
}

/// `wasmux run [extra...] BUNDLE`.
pub fn run_bundle(bundle: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.push(bundle.to_str().expect("utf-8 temp path"));
    wasmux(&args)
}

/// The captured stdout, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The captured stderr, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The engines this build of the command contains, as `wasmux engines` lists them.
pub fn engines() -> Vec<String> {
    let out = wasmux(&["engines"]);
    assert_eq!(out.status.code(), Some(0));
    stdout(&out)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The engines that can keep compiled code in the precompile cache.
pub fn precompiling_engines() -> Vec<String> {
    let out = wasmux(&["engines"]);
    stdout(&out)
        .lines()
        .filter(|line| line.contains("precompile: yes"))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}
