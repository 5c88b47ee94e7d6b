//! A sandboxed WASI preview1 for engines that have none of their own, or whose own one
//! exposes the host (wasm3's bundled WASI preopens the host's current directory and
//! passes guest paths straight to the host).
//!
//! The 46 calls come from `wasi-common` (the implementation wasmtime shipped for years),
//! over cap-std: every path is resolved beneath the preopen it names, so `..`, absolute
//! paths and symlinks that lead out are refused by the kernel (`openat2` with
//! `RESOLVE_BENEATH`). wasmux adds what wasi-common lacks: read-only preopens
//! (its `readonly` module), exit statuses beyond 125, and a table of host functions an engine
//! links by name and signature ([`FUNCTIONS`]), each taking the guest's memory as a
//! plain byte slice.

mod functions;
mod nodes;
mod open_rights;
mod readonly;
mod stdio;

use wasi_common::WasiCtx;
use wasi_common::sync::{Dir, WasiCtxBuilder};
use wasmux_core::{Error, Result, RunControl, RunSpec};

use crate::stdio::HostStream;

pub use functions::{FUNCTIONS, HostFunction, MODULE, ValType};

/// Why a host call ended the guest instead of returning to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `proc_exit` with this status (all 32 bits kept).
    Exit(u32),
    /// The call cannot go on: a guest pointer out of bounds, `proc_raise`, ...
    Trap(String),
}

/// One run's WASI state: argv, environment, standard streams and preopens, exactly as
/// the [`RunSpec`] says and nothing from the host process.
pub struct WasiHost {
    ctx: WasiCtx,
}

impl WasiHost {
    /// Builds the state for `spec`, taking its standard streams (the spec keeps
    /// `Inherit` in their place); a kill through `control` interrupts stdio waits.
    pub fn new(spec: &mut RunSpec, control: &RunControl) -> Result<Self> {
        let mut builder = WasiCtxBuilder::new();
        builder.args(&spec.args).map_err(too_big("argv"))?;
        builder.envs(&spec.env).map_err(too_big("environment"))?;
        let stdio = std::mem::take(&mut spec.stdio);
        builder.stdin(stdio::stream(stdio.stdin, HostStream::Stdin, control)?);
        builder.stdout(stdio::stream(stdio.stdout, HostStream::Stdout, control)?);
        builder.stderr(stdio::stream(stdio.stderr, HostStream::Stderr, control)?);
        let ctx = builder.build();
        for preopen in spec.wasi_preopens()? {
            let dir = preopen
                .dir
                .try_clone_file()
                .map(Dir::from_std_file)
                .and_then(|dir| readonly::preopen(dir, preopen.read_only))
                .map_err(|e| Error::io(format!("opening {}", preopen.dir.shown().display()), e))?;
            ctx.push_preopened_dir(dir, &preopen.guest).map_err(|e| {
                let context = format!("preopening {}", preopen.guest);
                Error::io(context, std::io::Error::other(e.to_string()))
            })?;
        }
        Ok(WasiHost { ctx })
    }

    /// [`call`](Self::call) with the arguments as an engine holds them, each already
    /// turned into its 64-bit slot (an `i32` zero-extended: preview1's pointers and
    /// lengths are unsigned). The widest preview1 call (`path_open`) takes 9 arguments,
    /// so they are gathered without an allocation per call.
    pub fn call_with(
        &mut self,
        index: usize,
        memory: &mut [u8],
        args: impl IntoIterator<Item = u64>,
    ) -> Result<i32, Stop> {
        let mut slots = [0u64; 9];
        let mut count = 0;
        for (slot, value) in slots.iter_mut().zip(args) {
            *slot = value;
            count += 1;
        }
        self.call(index, memory, &slots[..count])
    }

    /// Runs host function `index` of [`FUNCTIONS`] against the guest's memory, with
    /// its arguments as the engine's 64-bit slots. `Ok` carries the errno to return.
    pub fn call(&mut self, index: usize, memory: &mut [u8], args: &[u64]) -> Result<i32, Stop> {
        let function = FUNCTIONS
            .get(index)
            .ok_or_else(|| Stop::Trap(format!("no WASI host function number {index}")))?;
        let mut memory = wiggle::GuestMemory::Unshared(memory);
        let mut open_args = [0u64; 9];
        let args = if function.name == "path_open" && args.len() == open_args.len() {
            open_args.copy_from_slice(args);
            open_rights::as_the_reference_opens(&mut open_args);
            &open_args[..]
        } else {
            args
        };
        let errno = (function.call)(&mut self.ctx, &mut memory, args)?;
        Ok(self.socket_errno(function.name, args, errno))
    }

    /// wasi-common answers a socket call on any descriptor that is not a socket with
    /// `EBADF`; POSIX (and wasmtime) say `ENOTSOCK` when the descriptor exists. A run
    /// here has no sockets at all, so every open descriptor is such a one.
    fn socket_errno(&self, function: &str, args: &[u64], errno: i32) -> i32 {
        const EBADF: i32 = 8;
        const ENOTSOCK: i32 = 57;
        let fd = args.first().copied().unwrap_or_default() as u32;
        if function.starts_with("sock_") && errno == EBADF && self.ctx.table().contains_key(fd) {
            ENOTSOCK
        } else {
            errno
        }
    }
}

/// An argv or environment that cannot be laid out in guest memory.
fn too_big(what: &'static str) -> impl Fn(wasi_common::StringArrayError) -> Error {
    move |e| Error::InvalidBundle(format!("the guest's {what} cannot be passed: {e}"))
}

#[cfg(test)]
mod tests;
