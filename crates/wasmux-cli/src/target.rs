//! What `wasmux run` was asked to run: a bundle directory, or a module with a spec
//! made from the command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use wasmux::{
    Bundle, EngineOptions, Error, Launcher, Preopen, Requested, Result, RunSpec, Sniffed,
};

/// Arguments of `wasmux run`.
#[derive(Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Engine to use (default: the bundle's `run.oci.handler`, else the default engine).
    #[arg(long, value_name = "NAME")]
    pub engine: Option<String>,
    /// Configure the engine: `pooling=N` (wasmtime's pooling allocator for N live
    /// instances), `stack-size=BYTES` (`512k`, `8m`), `tier=baseline|optimized|auto`
    /// (wasmtime's compiler: Winch, Cranelift, or Winch for a big module's first start
    /// while Cranelift's code is cached in the background, the default), or a Wasm
    /// proposal `wasm-gc|wasm-exceptions|wasm-threads|wasm-tail-call|wasm-memory64|
    /// wasm-simd|wasm-multi-memory=on|off` (wasmtime). Repeatable; an engine refuses an
    /// option it does not have.
    #[arg(long = "engine-option", value_name = "KEY=VALUE")]
    engine_options: Vec<String>,
    /// Module only: give the guest HOST at GUEST (`HOST::GUEST`, or `HOST` for the same
    /// path); a `:ro` suffix makes it read-only. Repeatable.
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro]")]
    dirs: Vec<String>,
    /// Module only: set a guest environment variable (`KEY=VALUE`). Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    envs: Vec<String>,
    /// Cap the guest's linear memory (bytes; K, M and G suffixes are powers of 1024).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    memory_limit: Option<u64>,
    /// Kill the guest (exit 137) after this many seconds; a served wasi:http component:
    /// answer 504 for a request still running after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// Kill the guest (exit 152, SIGXCPU) once it has used this many seconds of CPU
    /// time; time spent waiting does not count. Runs only, not served components.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    cpu_time: Option<Duration>,
    /// Where a wasi:http proxy component is served (a component exporting
    /// wasi:http/incoming-handler is served, not run).
    #[arg(long, value_name = "ADDR", default_value = wasmux::DEFAULT_HTTP_LISTEN)]
    pub listen: String,
    /// Let a component use this process's network (wasi:sockets: TCP, UDP, name
    /// lookup). Off by default: outside a container it is the host's network.
    #[arg(long)]
    network: bool,
    /// Do not use the precompile cache (same as WASMUX_CACHE=off).
    #[arg(long)]
    pub no_cache: bool,
    /// Keep precompiled modules here (default: WASMUX_CACHE_DIR, else
    /// $XDG_CACHE_HOME/wasmux/modules).
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,
    /// A bundle directory (with config.json), or a .wasm/.wat module or component.
    target: PathBuf,
    /// Module only: arguments after the module (argv[0] is the module path as given).
    /// Everything after the module is the guest's, flags included, as with `wasmtime
    /// run`; a `--` before them is accepted too.
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

impl RunArgs {
    /// The launcher for this run: the environment's choices, then the flags
    /// (`--engine`, `--engine-option`, `--no-cache`, `--cache-dir`) over them.
    pub fn launcher(&self) -> Result<Launcher> {
        let mut launcher = Launcher::new().options(self.engine_options()?);
        if let Some(engine) = &self.engine {
            launcher = launcher.engine(engine);
        }
        launcher = match (&self.cache_dir, self.no_cache) {
            (_, true) => launcher.no_cache(),
            (Some(dir), false) => launcher.cache_dir(dir),
            (None, false) => launcher,
        };
        Ok(launcher)
    }

    /// The engine options the flags give.
    fn engine_options(&self) -> Result<EngineOptions> {
        let mut options = EngineOptions::new();
        for option in &self.engine_options {
            options.set(option)?;
        }
        Ok(options)
    }

    /// Builds the spec and returns it with what the bundle asks of its engine.
    pub fn prepare(&self) -> Result<(RunSpec, Requested)> {
        let (mut spec, requested) = if self.target.is_dir() {
            self.bundle_spec()?
        } else {
            (self.module_spec()?, Requested::default())
        };
        if self.memory_limit.is_some() {
            spec.limits.memory_bytes = self.memory_limit;
        }
        if self.timeout.is_some() {
            spec.limits.timeout = self.timeout;
        }
        if self.cpu_time.is_some() {
            spec.limits.cpu_time = self.cpu_time;
        }
        spec.network = self.network;
        Ok((spec, requested))
    }

    fn bundle_spec(&self) -> Result<(RunSpec, Requested)> {
        if !self.dirs.is_empty() || !self.envs.is_empty() || !self.args.is_empty() {
            return Err(Error::InvalidBundle(
                "--dir, --env and extra arguments apply to modules; a bundle's config.json sets them".into(),
            ));
        }
        let bundle = Bundle::load(&self.target)?;
        Ok((bundle.run_spec()?, bundle.requested()))
    }

    fn module_spec(&self) -> Result<RunSpec> {
        let origin = self.target.display().to_string();
        let bytes = std::fs::read(&self.target).map_err(|e| Error::EntrypointNotFound {
            path: origin.clone(),
            reason: e.to_string(),
        })?;
        let wasm = match wasmux::sniff(bytes, &origin)? {
            Sniffed::Wasm(wasm) => wasm,
            Sniffed::NotWasm(reason) => {
                return Err(Error::NotWasm {
                    path: origin,
                    reason,
                });
            }
        };
        let mut spec = RunSpec::new(wasm);
        spec.args = std::iter::once(origin)
            .chain(self.args.iter().cloned())
            .collect();
        spec.env = wasmux::parse_env(&self.envs)?;
        spec.mounts = self
            .dirs
            .iter()
            .map(|d| parse_dir(d))
            .collect::<Result<_>>()?;
        Ok(spec)
    }
}

/// `HOST::GUEST[:ro]` or `HOST[:ro]`.
fn parse_dir(arg: &str) -> Result<Preopen> {
    let (arg, read_only) = match arg.strip_suffix(":ro") {
        Some(rest) => (rest, true),
        None => (arg, false),
    };
    let (host, guest) = arg.split_once("::").unwrap_or((arg, arg));
    let host = PathBuf::from(host);
    if !host.is_dir() {
        return Err(Error::MountSourceMissing {
            source_path: host,
            destination: guest.to_owned(),
        });
    }
    let guest = if Path::new(guest).is_absolute() {
        guest.to_owned()
    } else {
        format!("/{guest}")
    };
    Ok(Preopen {
        host,
        guest,
        read_only,
    })
}

fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 10),
        Some((i, 'M' | 'm')) => (&s[..i], 20),
        Some((i, 'G' | 'g')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s} is too large"))
}

fn parse_seconds(s: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("32M"), Ok(32 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999G").is_err());
    }

    #[test]
    fn dirs_parse_guest_paths_and_ro() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().display().to_string();
        let p = parse_dir(&format!("{host}::/data:ro")).unwrap();
        assert_eq!((p.guest.as_str(), p.read_only), ("/data", true));
        let p = parse_dir(&format!("{host}::data")).unwrap();
        assert_eq!((p.guest.as_str(), p.read_only), ("/data", false));
        let p = parse_dir(&host).unwrap();
        assert_eq!(p.guest, host);
        assert!(matches!(
            parse_dir("/no/such::/x"),
            Err(Error::MountSourceMissing { .. })
        ));
    }

    #[test]
    fn seconds_must_be_a_number() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("-1").is_err());
    }
}
