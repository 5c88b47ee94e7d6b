//! Where the cache lives, from the environment: one switch to turn it off, one
//! variable to move it, the XDG base directory otherwise.

use std::ffi::OsString;
use std::path::PathBuf;

/// Turns the cache off when set to `off`, `0`, `false` or `no`.
pub const CACHE_SWITCH_VAR: &str = "WASMUX_CACHE";
/// Puts the cache in this directory instead of the XDG default.
pub const CACHE_DIR_VAR: &str = "WASMUX_CACHE_DIR";
/// Caps the cache's size (`500m`, `10g`, bytes; `none` for no cap).
pub const MAX_SIZE_VAR: &str = "WASMUX_CACHE_MAX_SIZE";
/// The cap without [`MAX_SIZE_VAR`]: room for a few dozen big modules' optimized code
/// (CPython's is about 40 MB) on a node that runs many images over weeks.
pub const DEFAULT_MAX_SIZE: u64 = 2 << 30;

/// The cap [`MAX_SIZE_VAR`] sets, [`DEFAULT_MAX_SIZE`] without it, `None` for `none`;
/// anything else is an error naming the variable.
pub fn max_size_from(var: impl Fn(&str) -> Option<OsString>) -> std::io::Result<Option<u64>> {
    let Some(value) = var(MAX_SIZE_VAR).filter(|v| !v.is_empty()) else {
        return Ok(Some(DEFAULT_MAX_SIZE));
    };
    let text = value.to_string_lossy();
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    wasmux_core::options::parse_size(&text)
        .map(|bytes| Some(bytes as u64))
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{MAX_SIZE_VAR}={text:?}: expected a size (500m, 10g, bytes) or none"),
            )
        })
}

/// Whether and where to cache precompiled modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSetting {
    /// No caching: every load compiles.
    Off,
    /// Cache in this directory.
    Dir(PathBuf),
}

impl CacheSetting {
    /// `WASMUX_CACHE=off` turns it off; else `WASMUX_CACHE_DIR`; else
    /// `$XDG_CACHE_HOME/wasmux/modules`; else `$HOME/.cache/wasmux/modules`; else off.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// What the two wasmux variables say (`WASMUX_CACHE=off` turns the cache off,
    /// `WASMUX_CACHE_DIR` moves it), if either is set: they win over any default.
    pub fn from_wasmux_vars(var: impl Fn(&str) -> Option<OsString>) -> Option<Self> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        if let Some(switch) = set(CACHE_SWITCH_VAR)
            && ["off", "0", "false", "no"].contains(&switch.to_string_lossy().as_ref())
        {
            return Some(CacheSetting::Off);
        }
        set(CACHE_DIR_VAR).map(|dir| CacheSetting::Dir(dir.into()))
    }

    /// The user's cache directory for wasmux: `$XDG_CACHE_HOME/wasmux/modules`, else
    /// `$HOME/.cache/wasmux/modules`; `None` without either (a service).
    pub fn user_dir(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        // XDG: a relative XDG_CACHE_HOME is invalid and must be ignored.
        let base = set("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| set("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(base.join("wasmux").join("modules"))
    }

    /// [`from_env`](Self::from_env) over any source of variables (tests, embedders).
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Self {
        Self::from_wasmux_vars(&var).unwrap_or_else(|| match Self::user_dir(&var) {
            Some(dir) => CacheSetting::Dir(dir),
            None => CacheSetting::Off,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(vars: &[(&str, &str)]) -> CacheSetting {
        CacheSetting::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn follows_xdg_then_home() {
        let dir = |p: &str| CacheSetting::Dir(PathBuf::from(p));
        assert_eq!(
            setting(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]),
            dir("/x/wasmux/modules")
        );
        assert_eq!(
            setting(&[("XDG_CACHE_HOME", "relative"), ("HOME", "/h")]),
            dir("/h/.cache/wasmux/modules")
        );
        assert_eq!(setting(&[("HOME", "/h")]), dir("/h/.cache/wasmux/modules"));
        assert_eq!(setting(&[]), CacheSetting::Off);
    }

    #[test]
    fn one_switch_turns_it_off_and_one_variable_moves_it() {
        for off in ["off", "0", "false", "no"] {
            assert_eq!(
                setting(&[
                    (CACHE_SWITCH_VAR, off),
                    (CACHE_DIR_VAR, "/c"),
                    ("HOME", "/h")
                ]),
                CacheSetting::Off
            );
        }
        assert_eq!(
            setting(&[
                (CACHE_SWITCH_VAR, "on"),
                (CACHE_DIR_VAR, "/c"),
                ("HOME", "/h")
            ]),
            CacheSetting::Dir("/c".into())
        );
    }

    #[test]
    fn the_wasmux_variables_win_over_any_default() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            CacheSetting::from_wasmux_vars(vars(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")])),
            None
        );
        assert_eq!(
            CacheSetting::from_wasmux_vars(vars(&[(CACHE_DIR_VAR, "/c")])),
            Some(CacheSetting::Dir("/c".into()))
        );
        assert_eq!(
            CacheSetting::from_wasmux_vars(vars(&[
                (CACHE_SWITCH_VAR, "off"),
                (CACHE_DIR_VAR, "/c")
            ])),
            Some(CacheSetting::Off)
        );
        assert_eq!(CacheSetting::user_dir(vars(&[])), None);
    }
}
