//! Robustness across engines, in one test binary (each test binary links every engine):
//! sequential runs that must not leak, concurrent runs that must not cross, and the
//! fuzz targets' regression inputs. The tests take turns ([`serial`]): the leak check
//! reads the whole process's resident set and descriptors.

// Test code: a failed expectation should panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod robustness {
    pub mod concurrent;
    pub mod fuzz_regressions;
    pub mod sequential;
}

/// Held by every test here, so none runs while another measures the process.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
