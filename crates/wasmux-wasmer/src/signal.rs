//! Keeps wasmer's host interrupt out of host code.
//!
//! wasmer stops a running guest by signalling its thread (SIGUSR1); its handler unwinds
//! the guest whenever the thread's stack pointer is on the guest's stack, and host
//! functions run on that stack too. A signal landing in host code (WASI's
//! syscalls, malloc) then captures a backtrace inside the signal handler and unwinds
//! out of the middle of host code: it deadlocked on the allocator's lock here, and
//! would leave any lock held by that code locked.
//!
//! A handler in front of wasmer's lets the signal through unchanged only when the
//! interrupted instruction is compiled guest code (anonymous executable memory).
//! Otherwise it shows wasmer's handler a copy of the context with no stack pointer:
//! wasmer then clears its pending signal and leaves the thread alone, the interrupt
//! flag stays set so the next host call's return stops the guest, and the retrying
//! interrupter can signal again.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::sync::{Mutex, OnceLock};

/// Executable mappings of files (the program, its libraries, the vDSO): host code.
static HOST_CODE: OnceLock<Vec<(usize, usize)>> = OnceLock::new();
/// wasmer's SIGUSR1 handler, which ours forwards to.
static WASMER_HANDLER: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the front handler once. wasmer's own must already be installed (any
/// `Store::new` does it).
pub(crate) fn install() -> std::io::Result<()> {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if WASMER_HANDLER.get().is_some() {
        return Ok(());
    }
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let _ = HOST_CODE.set(host_code(&maps));
    let mut ours: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    ours.sa_sigaction = front as *const () as usize;
    // As wasmer's own: SIGUSR1 stays blocked while its handler runs.
    ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    let mut previous = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: plain sigaction calls with valid structures.
    unsafe {
        libc::sigemptyset(&mut ours.sa_mask);
        if libc::sigaction(libc::SIGUSR1, &ours, previous.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let previous = previous.assume_init();
        if previous.sa_flags & libc::SA_SIGINFO == 0 {
            // Not wasmer's handler: put it back rather than forward to it.
            libc::sigaction(libc::SIGUSR1, &previous, std::ptr::null_mut());
            return Err(std::io::Error::other(
                "wasmer's SIGUSR1 handler is not installed",
            ));
        }
        let _ = WASMER_HANDLER.set(previous);
    }
    Ok(())
}

/// The `r-x` mappings backed by a file or a named kernel region, from `/proc/self/maps`.
fn host_code(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3);
            if !perms.contains('x') || path.is_none() {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some((
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect()
}

extern "C" fn front(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(wasmer) = WASMER_HANDLER.get() else {
        return;
    };
    // SAFETY: wasmer installed an SA_SIGINFO handler; the context is the kernel's.
    unsafe {
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            std::mem::transmute(wasmer.sa_sigaction);
        let ucontext = context as *mut libc::ucontext_t;
        if !in_host_code(pc(&*ucontext)) {
            return handler(signum, info, context);
        }
        let mut copy = std::ptr::read(ucontext);
        clear_sp(&mut copy);
        handler(signum, info, (&mut copy as *mut libc::ucontext_t).cast());
    }
}

fn in_host_code(pc: usize) -> bool {
    HOST_CODE.get().is_some_and(|ranges| {
        ranges
            .iter()
            .any(|&(start, end)| (start..end).contains(&pc))
    })
}

#[cfg(target_arch = "x86_64")]
fn pc(context: &libc::ucontext_t) -> usize {
    context.uc_mcontext.gregs[libc::REG_RIP as usize] as usize
}

#[cfg(target_arch = "x86_64")]
fn clear_sp(context: &mut libc::ucontext_t) {
    context.uc_mcontext.gregs[libc::REG_RSP as usize] = 0;
}

#[cfg(target_arch = "aarch64")]
fn pc(context: &libc::ucontext_t) -> usize {
    context.uc_mcontext.pc as usize
}

#[cfg(target_arch = "aarch64")]
fn clear_sp(context: &mut libc::ucontext_t) {
    context.uc_mcontext.sp = 0;
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_backed_and_named_executable_mappings_are_host_code() {
        let maps = "\
55d0-55e0 r-xp 00000000 08:01 123 /usr/bin/wasmux
7f00-7f10 r-xp 00000000 00:00 0 
7f10-7f20 rw-p 00000000 00:00 0 [heap]
7ffd-7ffe r-xp 00000000 00:00 0 [vdso]
";
        let ranges = super::host_code(maps);
        assert_eq!(ranges, [(0x55d0, 0x55e0), (0x7ffd, 0x7ffe)]);
    }
}
