//! `wasmux`: run a Wasm OCI bundle, or a bare module, on any compiled-in engine.

mod cache;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wasmux::{EXIT_RUNTIME_ERROR, RunControl, pending};

#[derive(Parser)]
#[command(
    name = "wasmux",
    version,
    about = "Run WebAssembly workloads from OCI bundles"
)]
struct Cli {
    /// Turn on tracing to stderr, optionally with a filter such as `wasmux=debug`
    /// (RUST_LOG works too).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "debug", value_name = "FILTER")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an OCI bundle directory, or a module/component file with an in-memory spec.
    Run(Box<target::RunArgs>),
    /// List the compiled-in engines with their versions and capabilities.
    Engines,
    /// See, check, trim and fill the precompile cache.
    Cache(cache::CacheArgs),
    /// Internal: a run's detached cache fill (the module on stdin).
    #[command(name = wasmux::pending::COMPILE_COMMAND, hide = true)]
    FillCache {
        engine: String,
        cache_dir: std::path::PathBuf,
        options: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log.as_deref());
    let code = match cli.command {
        Command::Run(args) => run(*args),
        Command::Engines => list_engines(),
        Command::Cache(args) => cache::cache(args).unwrap_or_else(|e| {
            eprintln!("wasmux: {e}");
            e.exit_code()
        }),
        Command::FillCache {
            engine,
            cache_dir,
            options,
        } => match pending::compile_from_stdin(&engine, &cache_dir, &options) {
            Ok(_) => 0,
            Err(e) => e.exit_code(),
        },
    };
    ExitCode::from(code)
}

fn run(args: target::RunArgs) -> u8 {
    // From before the spec makes its scratch directories: a signal ends the guest (or
    // the run before it starts), not this process, so they are removed on the way out.
    let control = RunControl::new();
    if let Err(e) = wasmux::signals::forward_terminating(&control) {
        eprintln!("wasmux: forwarding signals to the guest: {e}");
        return EXIT_RUNTIME_ERROR;
    }
    let result = args.prepare().and_then(|(spec, requested)| {
        let launcher = args.launcher()?;
        let cache = launcher.open_cache().unwrap_or_else(|e| {
            eprintln!("wasmux: warning: precompile cache unusable ({e}); running uncached");
            None
        });
        let launch = launcher.load(&spec.wasm, &requested, cache)?;
        if launch.cache_event.is_warning() {
            eprintln!("wasmux: warning: {}", launch.cache_event);
        }
        // Baseline code runs now; the optimized code is compiled for the next run by a
        // helper process (this binary, hidden subcommand), so this one exits with the
        // guest. If the helper cannot start, this process compiles it once the guest
        // is done.
        let left = launch.pending.and_then(|pending| {
            let failed = pending.hand_to(compile_helper).err()?;
            eprintln!(
                "wasmux: warning: no background cache fill ({}); compiling optimized code after the run",
                failed.error
            );
            Some(failed.pending)
        });
        let status = wasmux::run_or_serve(&launch.module, spec, &args.listen, &control);
        if let Some(pending) = left {
            pending.compile_now();
        }
        status
    });
    match result {
        Ok(status) => status.exit_code(),
        Err(e) => {
            eprintln!("wasmux: {e}");
            e.exit_code()
        }
    }
}

/// This binary in its hidden compile mode: the helper deferred optimized code goes to.
fn compile_helper() -> std::io::Result<std::process::Command> {
    let mut helper = std::process::Command::new(std::env::current_exe()?);
    helper.arg(pending::COMPILE_COMMAND);
    Ok(helper)
}

fn list_engines() -> u8 {
    for entry in wasmux::ENGINES {
        match wasmux::engine_by_name(entry.name) {
            Ok(engine) => {
                let caps: Vec<String> = wasmux::Capability::ALL
                    .iter()
                    .map(|&cap| format!("{}: {}", cap.name(), engine.support(cap)))
                    .collect();
                println!(
                    "{} {} ({})",
                    engine.name(),
                    engine.version(),
                    caps.join(", ")
                );
            }
            Err(e) => println!("{} (cannot start: {e})", entry.name),
        }
    }
    if wasmux::ENGINES.is_empty() {
        eprintln!("wasmux: no engine compiled in; build with --features wasmtime");
        return EXIT_RUNTIME_ERROR;
    }
    0
}

fn init_tracing(filter: Option<&str>) {
    let filter = match filter {
        Some(f) => f.to_owned(),
        None => match std::env::var("RUST_LOG") {
            Ok(f) => f,
            Err(_) => return,
        },
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
}
