//! Standard streams: binary-exact, complete, large.

use wasmux::ExitStatus;

use super::probe;
use crate::suite::{Check, Ctx, RunOptions, expect_bytes};

/// The probe's `spew` pattern: byte i is (i * step + i / 251) mod 256.
fn pattern(len: usize, step: usize) -> Vec<u8> {
    (0..len).map(|i| (i * step + i / 251) as u8).collect()
}

pub fn stdin_echo(ctx: &Ctx) -> Check {
    let input = pattern(1 << 20, 13);
    let bundle = ctx.write("echo", &probe(&["echo"]));
    let ran = ctx.run_with(
        &bundle,
        RunOptions {
            stdin: Some(input.clone()),
            ..RunOptions::default()
        },
    );
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(&input)
}

pub fn large_output(ctx: &Ctx) -> Check {
    let (out, err) = (4usize << 20, 1usize << 20);
    let bundle = ctx.write(
        "spew",
        &probe(&["spew", &out.to_string(), &err.to_string()]),
    );
    let ran = ctx.run(&bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(&pattern(out, 1))?;
    expect_bytes("stderr", &ran.stderr, &pattern(err, 7))
}
