//! The workloads: the repository's hello bundle (`examples/hello`), loaded once and
//! turned into a fresh spec for every run.

use std::path::{Path, PathBuf};

use wasmux::{Bundle, RunSpec, StdioStream};

/// The hello example bundle shipped with the repository.
pub fn hello_bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello")
}

/// The hello bundle's spec, as a runtime maps it once before running.
pub fn hello_spec() -> RunSpec {
    Bundle::load(hello_bundle())
        .and_then(|bundle| bundle.run_spec())
        .expect("the hello example bundle maps to a spec")
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
