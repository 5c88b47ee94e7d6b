//! The container process as other commands see it: a pid plus its start time, so a
//! recycled pid is never mistaken for the container (runc keeps the same pair).

use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};

/// A process identified beyond its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// The pid (as in the pid file).
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat`, field 22).
    pub start_ticks: u64,
}

impl ProcessIdentity {
    /// The identity of a live process, or `None` if it has already gone.
    pub fn of(pid: i32) -> Option<Self> {
        let stat = read_stat(pid)?;
        (!stat.dead).then_some(ProcessIdentity {
            pid,
            start_ticks: stat.start_ticks,
        })
    }

    /// Whether this very process still runs. A zombie counts as gone: it has exited,
    /// and only its reaper (conmon, the shim) still has to collect its status.
    pub fn is_alive(&self) -> bool {
        read_stat(self.pid).is_some_and(|s| !s.dead && s.start_ticks == self.start_ticks)
    }

    /// Sends `signal` to the process, if it is still this process.
    pub fn signal(&self, signal: Signal) -> std::io::Result<()> {
        if !self.is_alive() {
            return Err(rustix::io::Errno::SRCH.into());
        }
        let pid = Pid::from_raw(self.pid).ok_or_else(|| std::io::Error::other("pid 0"))?;
        rustix::process::kill_process(pid, signal).map_err(Into::into)
    }

    /// Waits until the process has exited, for at most `limit`.
    pub fn wait_gone(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while self.is_alive() {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

struct Stat {
    dead: bool,
    start_ticks: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) may hold spaces and parentheses,
/// so fields are counted from its closing parenthesis.
fn read_stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Stat> {
    let (_, after_name) = text.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?;
    // Field 3 is the state; field 22, the start time, is 19 further on.
    let start_ticks = fields.nth(18)?.parse().ok()?;
    Some(Stat {
        dead: matches!(state, "Z" | "X" | "x"),
        start_ticks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.start_ticks, 98765);
        assert!(!stat.dead);
        let zombie = line.replace(" S ", " Z ");
        assert!(parse_stat(&zombie).unwrap().dead);
        assert!(parse_stat("42 (trunc").is_none());
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not_it() {
        let me = ProcessIdentity::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let recycled = ProcessIdentity {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!recycled.is_alive());
        assert!(ProcessIdentity::of(0).is_none());
    }
}
