//! The container's process, inside its container: the wasmux spec of the process, the
//! engine, the signals, the exit code.

use anyhow::{Context, Result, bail};
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{RuntimeContext, Source};
use wasmux::{ArtifactStore, Launcher, RunControl, Sniffed};

use crate::bundle_annotations;
use crate::compile_service;
use crate::engine_choice::engine_of_runtime_name;

/// Runs one container's module with wasmux.
#[derive(Default)]
pub(crate) struct WasmuxSandbox;

impl Sandbox for WasmuxSandbox {
    /// Wasm by content, never by suffix: what wasmux's detection says of the entrypoint.
    async fn can_handle(&self, ctx: &impl RuntimeContext) -> Result<()> {
        let source = ctx.entrypoint().source;
        let bytes = source.as_bytes().context("reading the entrypoint")?;
        let origin = match &source {
            Source::File(path) => path.display().to_string(),
            Source::Oci(_) => "the image's Wasm layer".into(),
        };
        match wasmux::sniff(bytes.into_owned(), &origin)? {
            Sniffed::Wasm(_) => Ok(()),
            Sniffed::NotWasm(reason) => bail!("{origin} is not Wasm: {reason}"),
        }
    }

    /// Maps the process (the rootfs is `/`), loads the module through the node's
    /// precompile cache, runs it on its engine in a thread of its own (never on the
    /// shim's async runtime), and returns wasmux's exit code. A
    /// failure to start is reported on the container's stderr with wasmux's exit code
    /// (125, 126, 127), not the library's generic 137.
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> Result<i32> {
        let cwd = std::env::current_dir().context("the container's working directory")?;
        let cwd = cwd
            .to_str()
            .context("the working directory is not UTF-8")?
            .to_owned();
        let args = ctx.args().to_vec();
        let env = ctx.envs().to_vec();
        let argv0 = std::env::args().next().unwrap_or_default();
        let engine = engine_of_runtime_name(&argv0);
        let control = RunControl::new();
        // `ctr task kill`'s signal ends the guest with 128 + signal (SIGKILL needs no
        // handler).
        wasmux::signals::forward_terminating(&control).context("forwarding signals")?;
        let run = std::thread::Builder::new()
            .name("wasmux-guest".into())
            .spawn(move || -> wasmux::Result<u8> {
                let mut spec = wasmux::container_process_spec(&args, &env, &cwd)?;
                // The init is in the pod's network namespace: the guest may use it.
                spec.network = true;
                // The annotations of the container (or pod) the shim was started for.
                let annotations = bundle_annotations::get();
                let requested = wasmux::requested_by(annotations)?;
                spec.limits.timeout = wasmux::annotations::timeout(annotations)?;
                spec.limits.cpu_time = wasmux::annotations::cpu_time(annotations)?;
                let mut launcher = Launcher::new();
                if let Some(engine) = engine {
                    launcher = launcher.engine(engine);
                }
                let engine = launcher.choose_engine(&requested)?;
                // Compiled code from the helper outside the container (a sealed copy);
                // without one, a compile for this run only.
                let options = launcher.options_for(&requested);
                let entry = compile_service::entry_for(engine.as_ref(), &options, &spec.wasm);
                let store = entry.as_ref().map(|e| e as &dyn ArtifactStore);
                let (module, _event) = engine.load_cached(&spec.wasm, store)?;
                let listen = wasmux::http_listen(annotations, &spec.env);
                Ok(wasmux::run_or_serve(&module, spec, &listen, &control)?.exit_code())
            })
            .context("starting the guest's thread")?;
        let code = match run.join() {
            Ok(Ok(code)) => code,
            Ok(Err(error)) => {
                eprintln!("wasmux: {error}");
                error.exit_code()
            }
            Err(_) => bail!("the guest's thread panicked"),
        };
        Ok(i32::from(code))
    }
}
