//! Signals to the process become a kill of its guest: a runtime's container process and
//! `wasmux run` alike end the guest the same way for every terminating signal, then
//! return normally, so what the run holds (scratch directories of tmpfs mounts) is
//! cleaned up instead of being left behind by the default action.

use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::RunControl;

/// Signals whose default action ends a process: each ends the guest the same way.
pub const TERMINATING: [i32; 7] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM];

/// From now on, every [`TERMINATING`] signal this process receives kills the run of
/// `control` with that signal (its exit code is then 128 + the signal), from a thread of
/// its own.
pub fn forward_terminating(control: &RunControl) -> std::io::Result<()> {
    let mut signals = Signals::new(TERMINATING)?;
    let control = control.clone();
    std::thread::Builder::new()
        .name("wasmux-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                control.kill(signal);
            }
        })?;
    Ok(())
}
