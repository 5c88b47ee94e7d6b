//! Signal names and numbers as `kill` takes them: `9`, `KILL`, `SIGKILL`, any case.

use rustix::process::Signal;

use crate::error::{OciError, Result};

/// Linux's named signals by number.
const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Parses `kill`'s signal argument.
pub fn parse(text: &str) -> Result<Signal> {
    let unknown = || OciError::UnknownSignal(text.to_owned());
    let number = match text.parse::<i32>() {
        Ok(n) => n,
        Err(_) => {
            let upper = text.to_ascii_uppercase();
            let name = upper.strip_prefix("SIG").unwrap_or(&upper);
            NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|&(_, number)| number)
                .ok_or_else(unknown)?
        }
    };
    Signal::from_named_raw(number).ok_or_else(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_with_or_without_sig_in_any_case() {
        for text in ["15", "TERM", "SIGTERM", "sigterm", "term"] {
            assert_eq!(parse(text).unwrap(), Signal::TERM, "{text}");
        }
        assert_eq!(parse("9").unwrap(), Signal::KILL);
        assert_eq!(parse("SIGINT").unwrap(), Signal::INT);
        for bad in ["", "0", "-9", "99", "SIGNOPE", "TERM9"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
