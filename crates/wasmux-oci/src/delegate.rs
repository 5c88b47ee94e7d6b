//! Linux containers under the same runtime entry: a bundle whose entrypoint is not Wasm
//! (`compat-smart`, or no annotation) goes to a delegate runtime, runc by default, with
//! this very command line. The delegate keeps its own state under the same `--root`,
//! so every later command on that ID goes to it as well.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::error::OciError;
use crate::settings;

/// Replaces this process with the delegate runtime, given this process's arguments.
/// Returns only if that is impossible, with the error to report.
pub fn exec(reason: String) -> OciError {
    let Some(program) = settings::delegate() else {
        return OciError::NoDelegate {
            reason,
            detail: format!("{}=none", settings::DELEGATE_VAR),
        };
    };
    tracing::debug!(delegate = ?program, %reason, "handing the container to the delegate runtime");
    let error = Command::new(resolve(&program))
        .args(std::env::args_os().skip(1))
        .exec();
    OciError::NoDelegate {
        reason,
        detail: format!("{}: {error}", program.to_string_lossy()),
    }
}

/// Where a bare program name is looked for when the caller's environment has no PATH
/// (podman runs `delete` with an empty environment): the usual system directories.
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `program` as given if it holds a `/`, else the first match on PATH (or the
/// system directories when PATH is unset).
fn resolve(program: &OsStr) -> PathBuf {
    if program.as_encoded_bytes().contains(&b'/') {
        return program.into();
    }
    let path: OsString = std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| FALLBACK_PATH.into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| program.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_kept_and_bare_names_are_searched() {
        assert_eq!(resolve(OsStr::new("./x/runc")), PathBuf::from("./x/runc"));
        let sh = resolve(OsStr::new("sh"));
        assert!(sh.is_absolute() && sh.is_file(), "{}", sh.display());
        assert_eq!(
            resolve(OsStr::new("no-such-runtime-here")),
            PathBuf::from("no-such-runtime-here")
        );
    }
}
