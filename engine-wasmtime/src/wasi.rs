//! `RunSpec` → `WasiCtxBuilder`: argv, env, preopens, cwd and stdio, for p1 and p2 alike.

use wasmtime_wasi::cli::{InputFile, OutputFile};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmux_engine_api::{Error, Result, RunSpec};

/// A builder holding exactly what the spec grants: nothing of the host's environment,
/// arguments or file system is inherited.
pub(crate) fn builder(spec: &mut RunSpec) -> Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.args(&spec.args)
        .envs(&spec.env)
        .initial_cwd(&spec.cwd)
        .allow_blocking_current_thread(true);
    for preopen in spec.wasi_preopens()? {
        let perms = if preopen.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        wasi.preopened_dir(&preopen.host, &preopen.guest, perms)
            .map_err(|e| {
                Error::io(
                    format!(
                        "opening {} for the guest's {}",
                        preopen.host.display(),
                        preopen.guest
                    ),
                    std::io::Error::other(format!("{e:#}")),
                )
            })?;
    }
    let stdio = std::mem::take(&mut spec.stdio);
    match stdio.stdin.into_file_or_inherit(false)? {
        None => wasi.inherit_stdin(),
        Some(file) => wasi.stdin(InputFile::new(file)),
    };
    match stdio.stdout.into_file_or_inherit(true)? {
        None => wasi.inherit_stdout(),
        Some(file) => wasi.stdout(OutputFile::new(file)),
    };
    match stdio.stderr.into_file_or_inherit(true)? {
        None => wasi.inherit_stderr(),
        Some(file) => wasi.stderr(OutputFile::new(file)),
    };
    Ok(wasi)
}
