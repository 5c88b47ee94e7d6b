//! The guest the wasmer backend's own tests run.

#![allow(clippy::unwrap_used)]

use wasmux_core::WasmBinary;

/// Writes "hi\n" to stdout through `fd_write`, `times` times (0: forever).
pub fn writer(times: u32) -> WasmBinary {
    let wat = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write"
            (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "hi\n")
          (func (export "_start") (local $n i32)
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 3))
            (loop $again
              (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
              (local.set $n (i32.add (local.get $n) (i32.const 1)))
              (br_if $again (i32.or (i32.eqz (i32.const {times}))
                                    (i32.lt_u (local.get $n) (i32.const {times})))))))"#
    );
    WasmBinary::new(wat::parse_str(wat).unwrap(), "writer.wat").unwrap()
}
