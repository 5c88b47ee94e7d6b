//! `wasi:filesystem`'s `open-at` for components, with the rule every engine keeps: a
//! guest opens regular files, directories and the harmless default devices, nothing
//! else (`wasmux_core::hostfs::guest_may_open`; preview1 keeps it in
//! `wasmux-wasi-preview1`). wasmtime-wasi's own `open-at` does the open; this looks at
//! what the path names first, through an `O_PATH` descriptor (so a refused node is never
//! opened: a FIFO blocks, some devices act when opened), and at the descriptor it
//! returns (so a node swapped in between is refused too).

use std::os::fd::AsFd;
use std::path::Path;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    DescriptorFlags, ErrorCode, Host, HostDescriptor, OpenFlags, PathFlags,
};
use wasmux_core::hostfs::{guest_may_open, guest_may_use, peek_beneath};

use crate::run::ComponentState;

/// The interface wasmtime-wasi 48 defines; components importing an earlier 0.2 release
/// are linked to it by semver.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

type OpenAtArgs = (
    Resource<Descriptor>,
    PathFlags,
    String,
    OpenFlags,
    DescriptorFlags,
);

/// Replaces `[method]descriptor.open-at` in a linker that already has wasmtime-wasi's.
pub(crate) fn shadow_open_at(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(FILESYSTEM_TYPES)?.func_wrap(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, ComponentState>, args: OpenAtArgs| {
            open_at(store.data_mut(), args).map(|result| (result,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn open_at(
    state: &mut ComponentState,
    (dir, path_flags, path, open_flags, flags): OpenAtArgs,
) -> wasmtime::Result<Result<Resource<Descriptor>, ErrorCode>> {
    let mut fs = state.filesystem();
    if let Descriptor::Dir(parent) = fs.table.get(&dir)? {
        let follow = path_flags.contains(PathFlags::SYMLINK_FOLLOW);
        let before = peek_beneath(parent.dir.as_fd(), Path::new(&path), follow);
        if before.is_some_and(|stat| !guest_may_open(&stat)) {
            return Ok(Err(ErrorCode::Access));
        }
    }
    let opened = match HostDescriptor::open_at(&mut fs, dir, path_flags, path, open_flags, flags) {
        Ok(opened) => opened,
        Err(e) => return fs.convert_error_code(e).map(Err),
    };
    if let Descriptor::File(file) = fs.table.get(&opened)?
        && !guest_may_use(file.file.as_fd())
    {
        fs.table.delete(opened)?;
        return Ok(Err(ErrorCode::Access));
    }
    Ok(Ok(opened))
}
