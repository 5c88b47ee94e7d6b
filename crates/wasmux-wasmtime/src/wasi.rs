//! `RunSpec` → `WasiCtxBuilder`: argv, env, preopens, cwd and stdio, for p1 and p2 alike.

use std::fs::File;
use std::os::fd::AsFd;

use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmux_core::{Error, Result, RunControl, RunSpec, StdioStream};

use crate::stdio::GuestStream;

/// A builder holding exactly what the spec grants: nothing of the host's environment,
/// arguments or file system is inherited, and the network only when the spec grants
/// it. Stdio goes through streams that a kill interrupts even while they wait on a
/// full or silent pipe.
pub(crate) fn builder(spec: &mut RunSpec, control: &RunControl) -> Result<WasiCtxBuilder> {
    let mut wasi = builder_without_files(spec, control)?;
    preopen(&mut wasi, spec)?;
    Ok(wasi)
}

/// The spec's preopens opened once, for many contexts to share (a server's requests:
/// each would otherwise open every directory again, a fifth of a small request's
/// cost with eight of them). The handles are the same directories, by descriptor.
pub(crate) fn shared_files(spec: &RunSpec) -> Result<WasiFilesystemCtx> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.allow_blocking_current_thread(true);
    preopen(&mut wasi, spec)?;
    Ok(wasi.build().filesystem().clone())
}

/// [`builder`] without the preopens, for a context that is given [`shared_files`].
pub(crate) fn builder_without_files(
    spec: &mut RunSpec,
    control: &RunControl,
) -> Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.args(&spec.args)
        .envs(&spec.env)
        .initial_cwd(&spec.cwd)
        .allow_blocking_current_thread(true);
    if spec.network {
        // Any address the process's own network (the container's namespace) reaches.
        wasi.inherit_network()
            .allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(true);
    }
    let stdio = std::mem::take(&mut spec.stdio);
    let stream = |stream: StdioStream, write: bool, host: &dyn Fn() -> std::io::Result<File>| {
        let file = match stream.into_file_or_inherit(write)? {
            Some(file) => file,
            None => host().map_err(|e| Error::io("duplicating the host's stdio", e))?,
        };
        Ok::<_, Error>(GuestStream::new(file, control))
    };
    wasi.stdin(stream(stdio.stdin, false, &|| dup(std::io::stdin()))?);
    wasi.stdout(stream(stdio.stdout, true, &|| dup(std::io::stdout()))?);
    wasi.stderr(stream(stdio.stderr, true, &|| dup(std::io::stderr()))?);
    Ok(wasi)
}

/// Adds the spec's mounts as preopens, each opened through the descriptor it was
/// resolved to.
fn preopen(wasi: &mut WasiCtxBuilder, spec: &RunSpec) -> Result<()> {
    for preopen in spec.wasi_preopens()? {
        let perms = if preopen.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        // wasmtime-wasi takes a path only: the descriptor's magic link in /proc leads
        // to the directory that was resolved, whatever its name leads to now.
        wasi.preopened_dir(preopen.dir.proc_path(), &preopen.guest, perms)
            .map_err(|e| {
                Error::io(
                    format!(
                        "opening {} for the guest's {}",
                        preopen.dir.shown().display(),
                        preopen.guest
                    ),
                    std::io::Error::other(format!("{e:#}")),
                )
            })?;
    }
    Ok(())
}

/// The host process's own stream, as a file of the guest's (inherited stdio).
fn dup(stream: impl AsFd) -> std::io::Result<File> {
    Ok(File::from(stream.as_fd().try_clone_to_owned()?))
}
