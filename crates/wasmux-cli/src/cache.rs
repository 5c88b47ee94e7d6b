//! `wasmux cache`: see, check, trim and fill the precompile cache a node's runs share
//! (the directory `wasmux run` uses, or `--cache-dir`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use wasmux::inventory::{PrunePolicy, Report};
use wasmux::{CacheEvent, Error, Launcher, PrecompileCache, Result};

use crate::target::RunArgs;

/// Arguments of `wasmux cache`.
#[derive(Args)]
pub struct CacheArgs {
    /// The cache directory (default: the one `wasmux run` uses: WASMUX_CACHE_DIR, else
    /// $XDG_CACHE_HOME/wasmux/modules).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// List the entries, least recently used first: key, engine, engine version,
    /// configuration (compiler and settings fingerprint), size, last use, module hash.
    List,
    /// Re-check every entry's integrity; damaged ones are removed and reported.
    Verify,
    /// Remove entries no compiled-in engine loads (another wasmux or engine version),
    /// then what the flags say.
    Prune {
        /// Then the least recently used, until the cache holds at most this much
        /// (`500m`, `10g`, bytes).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
        /// And every entry unused for longer than this (`7d`, `12h`, `30m`, seconds).
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: Option<Duration>,
    },
    /// Compile a bundle's module, or a module file, into the cache ahead of its first
    /// start (what a node does at image pull), on the engine and options a run of it
    /// would use.
    Precompile(Box<RunArgs>),
}

/// Runs `wasmux cache`; the exit code.
pub fn cache(args: CacheArgs) -> Result<u8> {
    if let CacheCommand::Precompile(run) = args.command {
        return precompile(&run, args.cache_dir);
    }
    let launcher = match args.cache_dir {
        Some(dir) => Launcher::new().cache_dir(dir),
        None => Launcher::new(),
    };
    let cache = open(&launcher)?;
    match args.command {
        CacheCommand::List => list(&cache)?,
        CacheCommand::Verify => {
            let report = cache.verify().map_err(|e| io_error(&cache, e))?;
            print_report(&report, "sound");
        }
        CacheCommand::Prune {
            max_size,
            older_than,
        } => {
            let policy = PrunePolicy {
                max_size,
                older_than,
                ..PrunePolicy::for_engines(compiled_in())
            };
            let report = cache.prune(&policy).map_err(|e| io_error(&cache, e))?;
            print_report(&report, "kept");
        }
        CacheCommand::Precompile(_) => unreachable!("handled above"),
    }
    Ok(0)
}

/// The cache `launcher` uses, which must be on.
fn open(launcher: &Launcher) -> Result<PrecompileCache> {
    launcher
        .open_cache()
        .map_err(|e| Error::io("the precompile cache", e))?
        .ok_or_else(|| {
            Error::InvalidBundle(
                "the precompile cache is off (WASMUX_CACHE=off, or no HOME): give --cache-dir"
                    .into(),
            )
        })
}

fn io_error(cache: &PrecompileCache, e: std::io::Error) -> Error {
    Error::io(format!("the precompile cache {cache}"), e)
}

/// The descriptors of the compiled-in engines (the registry's, none built).
fn compiled_in() -> impl Iterator<Item = &'static wasmux::Descriptor> {
    wasmux::ENGINES.iter().map(|entry| entry.descriptor)
}

fn list(cache: &PrecompileCache) -> Result<()> {
    let entries = cache.list().map_err(|e| io_error(cache, e))?;
    println!(
        "{:<12} {:<12} {:<8} {:<18} {:>10} {:>9}  MODULE",
        "KEY", "ENGINE", "VERSION", "CONFIG", "SIZE", "LAST USE"
    );
    let now = SystemTime::now();
    for entry in &entries {
        let age = now.duration_since(entry.last_use).unwrap_or_default();
        let (engine, version, config, module) = match &entry.info {
            Ok(info) => (
                info.engine.as_str(),
                info.engine_version.as_str(),
                info.fingerprint.get(..18).unwrap_or(&info.fingerprint),
                &info.module[..],
            ),
            Err(_) => ("?", "?", "?", "unreadable: run `wasmux cache verify`"),
        };
        println!(
            "{:<12} {:<12} {:<8} {:<18} {:>10} {:>9}  {}",
            short(&entry.key),
            engine,
            version,
            config,
            human_size(entry.size),
            format!("{} ago", human_age(age)),
            short(module),
        );
    }
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let cap = match cache.max_size() {
        Some(cap) => format!("cap {}", human_size(cap)),
        None => "no cap".to_owned(),
    };
    println!(
        "{} entries, {} ({cap}) in {cache}",
        entries.len(),
        human_size(total)
    );
    Ok(())
}

fn print_report(report: &Report, kept: &str) {
    for removed in &report.removed {
        println!(
            "removed {} ({}): {}",
            removed.path.display(),
            human_size(removed.size),
            removed.reason
        );
    }
    println!(
        "{} removed, {} {kept} ({})",
        report.removed.len(),
        report.kept,
        human_size(report.kept_bytes)
    );
}

/// Loads `run`'s target through the cache as `wasmux run` would (engine, options, the
/// bundle's annotations), then compiles any optimized code a tiered engine deferred.
fn precompile(run: &RunArgs, dir: Option<PathBuf>) -> Result<u8> {
    let (spec, requested) = run.prepare()?;
    let mut launcher = run.launcher()?;
    if let Some(dir) = dir {
        launcher = launcher.cache_dir(dir);
    }
    let cache = open(&launcher)?;
    let launch = launcher.load(&spec.wasm, &requested, Some(cache))?;
    let event = match launch.pending {
        Some(pending) => pending.compile()?,
        None => launch.cache_event,
    };
    println!("{} on {}: {event}", spec.wasm.origin, launch.engine.name());
    Ok(match event {
        CacheEvent::Hit | CacheEvent::Stored | CacheEvent::Replaced(_) => 0,
        _ => 1,
    })
}

fn short(text: &str) -> &str {
    text.get(..12).unwrap_or(text)
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn human_age(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn parse_size(text: &str) -> std::result::Result<u64, String> {
    wasmux::parse_size(text)
        .map(|b| b as u64)
        .ok_or_else(|| format!("{text:?}: expected a size such as 500m, 10g or bytes"))
}

fn parse_age(text: &str) -> std::result::Result<Duration, String> {
    let units = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    let (digits, unit) = units
        .iter()
        .find_map(|(suffix, secs)| Some((text.strip_suffix(*suffix)?, *secs)))
        .unwrap_or((text, 1));
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: expected an age such as 7d, 12h, 30m or seconds"))
}
