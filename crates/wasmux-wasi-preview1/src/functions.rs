//! The preview1 host functions as a table an engine links by name and signature: one
//! entry per call, each unpacking its arguments from 64-bit slots and running
//! wasi-common's implementation against the guest's memory.

use wasi_common::WasiCtx;
use wasi_common::snapshots::preview_1::wasi_snapshot_preview1 as p1;
use wiggle::GuestMemory;

use crate::Stop;

/// The import module every function here belongs to.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// A WebAssembly value type, as an engine declares a host function's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValType {
    /// 32-bit integer (pointers, lengths, fds, flags).
    I32,
    /// 64-bit integer (file sizes, offsets, timestamps, rights).
    I64,
}

/// One preview1 function: its name and signature for linking, and how to run it.
pub struct HostFunction {
    /// The import name in [`MODULE`].
    pub name: &'static str,
    /// Parameter types, in order.
    pub params: &'static [ValType],
    /// Whether it returns an errno (`i32`); only `proc_exit` returns nothing.
    pub returns_errno: bool,
    /// Runs the call; `Ok` is the errno.
    pub(crate) call: fn(&mut WasiCtx, &mut GuestMemory<'_>, &[u64]) -> Result<i32, Stop>,
}

/// Reads the next argument slot as the parameter type the function declares.
macro_rules! arg {
    (I32, $slots:ident) => {
        $slots.next().unwrap_or_default() as u32 as i32
    };
    (I64, $slots:ident) => {
        $slots.next().unwrap_or_default() as i64
    };
}

/// Declares the table from one line per function, so a name, its signature and its
/// call can never disagree.
macro_rules! preview1 {
    ($($name:ident($($ty:ident),*);)*) => {
        /// Every preview1 function, in the witx's order.
        pub const FUNCTIONS: &[HostFunction] = &[
            HostFunction {
                name: "proc_exit",
                params: &[ValType::I32],
                returns_errno: false,
                call: |_, _, slots| {
                    Err(Stop::Exit(slots.first().copied().unwrap_or_default() as u32))
                },
            },
            $(HostFunction {
                name: stringify!($name),
                params: &[$(ValType::$ty),*],
                returns_errno: true,
                call: |ctx, memory, slots| {
                    #[allow(unused_mut, unused_variables)]
                    let mut slots = slots.iter().copied();
                    let pending = p1::$name(ctx, memory, $(arg!($ty, slots)),*);
                    wiggle::run_in_dummy_executor(pending)
                        .and_then(|errno| errno)
                        .map_err(|e| Stop::Trap(e.to_string()))
                },
            },)*
        ];
    };
}

preview1! {
    args_get(I32, I32);
    args_sizes_get(I32, I32);
    environ_get(I32, I32);
    environ_sizes_get(I32, I32);
    clock_res_get(I32, I32);
    clock_time_get(I32, I64, I32);
    fd_advise(I32, I64, I64, I32);
    fd_allocate(I32, I64, I64);
    fd_close(I32);
    fd_datasync(I32);
    fd_fdstat_get(I32, I32);
    fd_fdstat_set_flags(I32, I32);
    fd_fdstat_set_rights(I32, I64, I64);
    fd_filestat_get(I32, I32);
    fd_filestat_set_size(I32, I64);
    fd_filestat_set_times(I32, I64, I64, I32);
    fd_pread(I32, I32, I32, I64, I32);
    fd_prestat_get(I32, I32);
    fd_prestat_dir_name(I32, I32, I32);
    fd_pwrite(I32, I32, I32, I64, I32);
    fd_read(I32, I32, I32, I32);
    fd_readdir(I32, I32, I32, I64, I32);
    fd_renumber(I32, I32);
    fd_seek(I32, I64, I32, I32);
    fd_sync(I32);
    fd_tell(I32, I32);
    fd_write(I32, I32, I32, I32);
    path_create_directory(I32, I32, I32);
    path_filestat_get(I32, I32, I32, I32, I32);
    path_filestat_set_times(I32, I32, I32, I32, I64, I64, I32);
    path_link(I32, I32, I32, I32, I32, I32, I32);
    path_open(I32, I32, I32, I32, I32, I64, I64, I32, I32);
    path_readlink(I32, I32, I32, I32, I32, I32);
    path_remove_directory(I32, I32, I32);
    path_rename(I32, I32, I32, I32, I32, I32);
    path_symlink(I32, I32, I32, I32, I32);
    path_unlink_file(I32, I32, I32);
    poll_oneoff(I32, I32, I32, I32);
    proc_raise(I32);
    sched_yield();
    random_get(I32, I32);
    sock_accept(I32, I32, I32);
    sock_recv(I32, I32, I32, I32, I32, I32);
    sock_send(I32, I32, I32, I32, I32);
    sock_shutdown(I32, I32);
}
