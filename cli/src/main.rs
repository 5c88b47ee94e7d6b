//! `wasmux`: run a Wasm OCI bundle, or a bare module, on any compiled-in engine.

mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wasmux::{CacheEvent, EXIT_RUNTIME_ERROR, RunControl, deferred_fill};

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
    /// Internal: a run's detached cache fill (the module on stdin).
    #[command(name = wasmux::deferred_fill::FILL_CACHE_COMMAND, hide = true)]
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
        Command::FillCache {
            engine,
            cache_dir,
            options,
        } => match wasmux::deferred_fill::fill_from_stdin(&engine, &cache_dir, &options) {
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
        let options = args.engine_options()?;
        let engine = wasmux::select_engine_with_options(
            args.engine.as_deref(),
            requested.as_deref(),
            &options,
        )?;
        let cache = args.cache();
        let (module, event) = engine.load_cached(&spec.wasm, cache.as_ref())?;
        if event.is_warning() {
            eprintln!("wasmux: warning: {event}");
        }
        let mut fill_after_run = None;
        if let (CacheEvent::Deferred, Some(cache)) = (&event, &cache) {
            // Baseline code runs now; the optimized code is compiled for the next run
            // by a detached process, so this one exits with the guest. If that process
            // cannot start, this one compiles it once the guest is done.
            let spawned =
                deferred_fill::spawn_detached(engine.name(), &options, cache, &spec.wasm);
            if let Err(e) = spawned {
                eprintln!(
                    "wasmux: warning: no background cache fill ({e}); compiling optimized code after the run"
                );
                fill_after_run = Some((cache, spec.wasm.clone()));
            }
        }
        let status = module.run(spec, &control);
        if let Some((cache, wasm)) = fill_after_run {
            deferred_fill::fill_now(engine.as_ref(), &wasm, cache);
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

fn list_engines() -> u8 {
    for entry in wasmux::ENGINES {
        match wasmux::engine_by_name(entry.name) {
            Ok(engine) => {
                let caps: Vec<String> = engine
                    .capability_list()
                    .iter()
                    .map(|(name, support)| format!("{name}: {support}"))
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
