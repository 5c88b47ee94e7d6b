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
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types as async_types;
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

/// Replaces `[method]descriptor.open-at` in a linker that already has wasmtime-wasi's
/// synchronous host functions.
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

/// [`shadow_open_at`] for a linker with wasmtime-wasi's asynchronous host functions
/// (a served component's).
pub(crate) fn shadow_open_at_async(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(FILESYSTEM_TYPES)?.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, ComponentState>,
         (dir, path_flags, path, open_flags, flags): AsyncOpenAtArgs| {
            Box::new(async move {
                let mut fs = store.data_mut().filesystem();
                let follow = path_flags.contains(async_types::PathFlags::SYMLINK_FOLLOW);
                if refused_before(&mut fs, &dir, follow, &path)? {
                    return Ok((Err(async_types::ErrorCode::Access),));
                }
                let opened = match async_types::HostDescriptor::open_at(
                    &mut fs, dir, path_flags, path, open_flags, flags,
                )
                .await
                {
                    Ok(opened) => opened,
                    Err(e) => {
                        return Ok((Err(async_types::Host::convert_error_code(&mut fs, e)?),));
                    }
                };
                Ok((refused_after(&mut fs, opened)?.ok_or(async_types::ErrorCode::Access),))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

type AsyncOpenAtArgs = (
    Resource<Descriptor>,
    async_types::PathFlags,
    String,
    async_types::OpenFlags,
    async_types::DescriptorFlags,
);

fn open_at(
    state: &mut ComponentState,
    (dir, path_flags, path, open_flags, flags): OpenAtArgs,
) -> wasmtime::Result<Result<Resource<Descriptor>, ErrorCode>> {
    let mut fs = state.filesystem();
    let follow = path_flags.contains(PathFlags::SYMLINK_FOLLOW);
    if refused_before(&mut fs, &dir, follow, &path)? {
        return Ok(Err(ErrorCode::Access));
    }
    let opened = match HostDescriptor::open_at(&mut fs, dir, path_flags, path, open_flags, flags) {
        Ok(opened) => opened,
        Err(e) => return fs.convert_error_code(e).map(Err),
    };
    Ok(refused_after(&mut fs, opened)?.ok_or(ErrorCode::Access))
}

/// Whether `path` beneath `dir` names a node a guest may not open, looked at before
/// anything is opened.
fn refused_before(
    fs: &mut WasiFilesystemCtxView<'_>,
    dir: &Resource<Descriptor>,
    follow: bool,
    path: &str,
) -> wasmtime::Result<bool> {
    Ok(match fs.table.get(dir)? {
        Descriptor::Dir(parent) => peek_beneath(parent.dir.as_fd(), Path::new(path), follow)
            .is_some_and(|stat| !guest_may_open(&stat)),
        Descriptor::File(_) => false,
    })
}

/// `opened`, unless it is a file a guest may not use (a node swapped in after the
/// look): then it is closed and `None`.
fn refused_after(
    fs: &mut WasiFilesystemCtxView<'_>,
    opened: Resource<Descriptor>,
) -> wasmtime::Result<Option<Resource<Descriptor>>> {
    if let Descriptor::File(file) = fs.table.get(&opened)?
        && !guest_may_use(file.file.as_fd())
    {
        fs.table.delete(opened)?;
        return Ok(None);
    }
    Ok(Some(opened))
}
