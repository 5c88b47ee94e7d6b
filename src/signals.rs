//! Signals to the process become a kill of its guest: a runtime's container process and
//! `wasmux run` alike end the guest the same way for every terminating signal, then
//! return normally, so what the run holds (scratch directories of tmpfs mounts) is
//! cleaned up instead of being left behind by the default action.

use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::RunControl;

/// Signals whose default action ends a process: each ends the guest the same way.
pub const TERMINATING: [i32; 7] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM];

/// How long a guest has to end after the first terminating signal before the process
/// exits without it: longer than a server's drain of requests in flight, shorter than
/// the 10 s after which podman and Docker send SIGKILL by default plus their margin.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(11);

/// From now on, every [`TERMINATING`] signal this process receives kills the run of
/// `control` with that signal (its exit code is then 128 + the signal), from a thread of
/// its own. A guest blocked in a host call no kill reaches (a socket's `accept`) does
/// not keep the process: [`STOP_GRACE`] after the first signal it exits with 128 + that
/// signal, saying so on stderr. For processes that run one guest: a runtime's container
/// process, `wasmux run`.
pub fn forward_terminating(control: &RunControl) -> std::io::Result<()> {
    let mut signals = Signals::new(TERMINATING)?;
    let control = control.clone();
    std::thread::Builder::new()
        .name("wasmux-signals".into())
        .spawn(move || {
            let mut watchdog = None;
            for signal in signals.forever() {
                control.kill(signal);
                watchdog.get_or_insert_with(|| exit_after_grace(signal));
            }
        })?;
    Ok(())
}

/// Ends the process with 128 + `signal` once [`STOP_GRACE`] has passed.
fn exit_after_grace(signal: i32) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("wasmux-stop-grace".into())
        .spawn(move || {
            std::thread::sleep(STOP_GRACE);
            eprintln!(
                "wasmux: the guest did not end within {} s of signal {signal} (blocked in a host call); exiting",
                STOP_GRACE.as_secs()
            );
            std::process::exit(128 + signal);
        })
}
