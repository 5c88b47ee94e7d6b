//! The rights a `path_open` gets, as wasmtime's WASI (the differential suite's
//! reference, and what wasmtime's users get) grants them: creating or truncating a
//! file opens it for writing, whatever rights wasi-libc computed from the access mode.
//! `open(p, O_RDONLY | O_CREAT)` and `open(p, O_RDONLY | O_TRUNC)` then give a
//! descriptor that writes on every engine alike, and `O_RDONLY | O_TRUNC` truncates
//! (as Linux does) instead of failing with EINVAL. A read-only preopen still refuses
//! both (its own check, `readonly`).

/// `path_open`'s arguments: `fd, dirflags, path, path_len, oflags, fs_rights_base,
/// fs_rights_inheriting, fdflags, fd_out`.
const OFLAGS: usize = 4;
const RIGHTS_BASE: usize = 5;

const CREAT: u64 = 1;
const TRUNC: u64 = 8;
const FD_WRITE: u64 = 1 << 6;

/// Adds the write right to a `path_open` that creates or truncates.
pub(crate) fn as_the_reference_opens(args: &mut [u64; 9]) {
    if args[OFLAGS] & (CREAT | TRUNC) != 0 {
        args[RIGHTS_BASE] |= FD_WRITE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creating_or_truncating_adds_the_write_right_and_nothing_else_changes() {
        let open = |oflags: u64, rights: u64| {
            let mut args = [3, 1, 0, 0, oflags, rights, 0, 0, 0];
            as_the_reference_opens(&mut args);
            args[RIGHTS_BASE]
        };
        let read = 1 << 1;
        assert_eq!(open(CREAT, read), read | FD_WRITE);
        assert_eq!(open(TRUNC, read), read | FD_WRITE);
        assert_eq!(open(0, read), read);
        assert_eq!(open(2, read), read, "O_DIRECTORY alone");
    }
}
