//! `RunControl`: how a host stops a running guest (kill, deadline), for every engine alike.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::status::{SIGKILL, SIGXCPU};

type Interrupter = Arc<dyn Fn() + Send + Sync>;

/// A handle shared between the host and a running guest. Clone it, hand one clone to
/// the run, and call [`kill`](Self::kill) from any thread to stop the guest.
#[derive(Clone, Default)]
pub struct RunControl {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    killed: Option<i32>,
    interrupters: Vec<(u64, Interrupter)>,
    next_id: u64,
}

impl std::fmt::Debug for RunControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl")
            .field("killed", &self.killed())
            .finish()
    }
}

impl RunControl {
    /// A fresh control: not killed, no deadline.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (every
        // update is a single assignment or push), so a poisoned lock is still usable.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops the guest as soon as the engine can; the run ends as `Killed(signal)`.
    /// The first kill wins; later ones are ignored. Safe to call before the run starts.
    pub fn kill(&self, signal: i32) {
        let interrupters: Vec<Interrupter> = {
            let mut state = self.state();
            if state.killed.is_some() {
                return;
            }
            state.killed = Some(signal);
            state.interrupters.iter().map(|(_, f)| f.clone()).collect()
        };
        self.shared.changed.notify_all();
        for interrupt in interrupters {
            interrupt();
        }
    }

    /// The signal the guest was killed with, if any.
    pub fn killed(&self) -> Option<i32> {
        self.state().killed
    }

    /// For backends: `interrupt` is called (from the killing thread) when a kill
    /// arrives while the guard lives, or at once if the run was already killed.
    pub fn on_kill(&self, interrupt: impl Fn() + Send + Sync + 'static) -> KillHook {
        let interrupt: Interrupter = Arc::new(interrupt);
        let id = {
            let mut state = self.state();
            let id = state.next_id;
            state.next_id += 1;
            state.interrupters.push((id, interrupt.clone()));
            if state.killed.is_none() {
                return KillHook {
                    control: self.clone(),
                    id,
                };
            }
            id
        };
        interrupt();
        KillHook {
            control: self.clone(),
            id,
        }
    }

    /// Kills the guest with SIGKILL once `timeout` has passed, unless the returned
    /// guard is dropped first (the run ended). Costs one parked thread per armed run.
    pub fn arm_deadline(&self, timeout: Duration) -> Deadline {
        let until = Instant::now() + timeout;
        self.watch("wasmux-deadline", move || {
            match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Watch::Wait(left),
                _ => Watch::Kill(SIGKILL),
            }
        })
    }

    /// Kills the guest with SIGXCPU (exit 152, as the kernel's `RLIMIT_CPU`) once
    /// this process has used `budget` of CPU time from now, on all its threads (a
    /// container's process runs one guest), unless the returned guard is dropped first.
    /// Time spent waiting (on stdin, a sleep, a socket) does not count, unlike a
    /// deadline's. Checked every [`CPU_CHECK_INTERVAL`] at most, so a guest may
    /// overrun by that much per core. `None` where the process's CPU clock cannot be
    /// read.
    pub fn arm_cpu_budget(&self, budget: Duration) -> Option<Deadline> {
        let start = process_cpu_time()?;
        Some(self.watch("wasmux-cpu-budget", move || {
            let used = process_cpu_time().map_or(budget, |now| now.saturating_sub(start));
            match budget.checked_sub(used) {
                Some(left) if !left.is_zero() => Watch::Wait(left.min(CPU_CHECK_INTERVAL)),
                _ => Watch::Kill(SIGXCPU),
            }
        }))
    }

    /// A watcher thread that asks `next` what to do until the returned guard is
    /// dropped: wait that long and ask again, or kill the guest.
    fn watch(&self, name: &str, mut next: impl FnMut() -> Watch + Send + 'static) -> Deadline {
        let disarmed = Arc::new((Mutex::new(false), Condvar::new()));
        let control = self.clone();
        let flag = disarmed.clone();
        let watcher = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let (lock, cvar) = &*flag;
                let mut done = lock.lock().unwrap_or_else(|p| p.into_inner());
                while !*done {
                    match next() {
                        Watch::Kill(signal) => {
                            drop(done);
                            control.kill(signal);
                            return;
                        }
                        Watch::Wait(period) => {
                            done = cvar
                                .wait_timeout(done, period)
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                    }
                }
            });
        Deadline {
            disarmed,
            watcher: watcher.ok(),
        }
    }
}

/// How often a CPU budget is checked at most.
pub const CPU_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// What a watcher does next.
enum Watch {
    Wait(Duration),
    Kill(i32),
}

/// CPU time this process has used, on all its threads.
fn process_cpu_time() -> Option<Duration> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let secs = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

/// Keeps a backend's interrupter registered; unregisters it on drop.
#[must_use = "the interrupter is unregistered when this is dropped"]
pub struct KillHook {
    control: RunControl,
    id: u64,
}

impl Drop for KillHook {
    fn drop(&mut self) {
        self.control
            .state()
            .interrupters
            .retain(|(id, _)| *id != self.id);
    }
}

/// An armed deadline or CPU budget; dropping it disarms the watcher and waits for its
/// thread.
#[must_use = "the deadline is disarmed when this is dropped"]
pub struct Deadline {
    disarmed: Arc<(Mutex<bool>, Condvar)>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.disarmed;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// (That waiting costs nothing is the CLI's test: this process's other tests use
    /// CPU time too.)
    #[test]
    fn a_cpu_budget_kills_a_busy_guest_with_sigxcpu() {
        let busy = RunControl::new();
        let _budget = busy.arm_cpu_budget(Duration::from_millis(50)).unwrap();
        let started = Instant::now();
        while busy.killed().is_none() && started.elapsed() < Duration::from_secs(30) {
            std::hint::black_box(started.elapsed());
        }
        assert_eq!(busy.killed(), Some(SIGXCPU));
    }

    #[test]
    fn kill_runs_interrupters_once_and_first_signal_wins() {
        let control = RunControl::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let hook = control.on_kill(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        control.kill(15);
        control.kill(9);
        assert_eq!(control.killed(), Some(15));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        drop(hook);
    }

    #[test]
    fn hook_registered_after_kill_fires_immediately() {
        let control = RunControl::new();
        control.kill(9);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let _hook = control.on_kill(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn deadline_fires_and_disarms() {
        let control = RunControl::new();
        let deadline = control.arm_deadline(Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(control.killed(), Some(SIGKILL));
        drop(deadline);

        let control = RunControl::new();
        drop(control.arm_deadline(Duration::from_secs(3600)));
        assert_eq!(control.killed(), None);
    }
}
