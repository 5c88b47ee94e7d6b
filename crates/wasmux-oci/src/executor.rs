//! What runs in the container's init, once libcontainer has built the container the
//! spec describes (namespaces, cgroups, rootfs and pivot_root, user, capabilities,
//! seccomp, rlimits): wasmux, with the module loaded before `start` and run after it.
//!
//! The init sees only the container's root. The module is mapped from the container's
//! own rootfs and mount table (as the shim does: [`wasmux::container_process_spec`]),
//! and compiled code comes from a sealed copy of the one cache entry it needs, which
//! `create` compiled and stored outside the container: nothing inside a container can
//! write code another container will run.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use wasmux::{ArtifactStore, LoadedModule, Requested, RunControl, RunSpec, SealedEntry};

use crate::settings;

/// The module and spec `validate` prepared, for `exec`, and where a `wasi:http`
/// component is served.
struct Prepared {
    module: LoadedModule,
    spec: RunSpec,
    listen: String,
}

/// What `create` decided on the host, from the bundle, for the init to follow: the
/// init loads on the engine whose code `create` sealed, with the same limit and address.
pub struct HostDecisions {
    /// The engine `create` chose (the launcher's one rule).
    pub engine: String,
    /// The options it was built with (the bundle's `wasmux.io/engine-options`): the
    /// init's engine must be the same, or the cache entry would not be its own.
    pub options: wasmux::EngineOptions,
    /// The spec's limits: the memory limit, which the engine enforces as well as the
    /// cgroup (so a guest over it gets a refused grow, not only the kernel's OOM
    /// kill), and the `wasmux.io/timeout` deadline.
    pub limits: wasmux::Limits,
    /// Where a `wasi:http` component is served ([`wasmux::http_listen`]).
    pub listen: String,
    /// The sealed cache entry `create` made for this module (inherited by the init).
    pub entry: Option<OwnedFd>,
}

/// libcontainer's executor for Wasm containers. Cloned into the init process before
/// it starts; `validate` and `exec` then run there, in that order.
#[derive(Clone)]
pub struct WasmExecutor {
    decided: Arc<HostDecisions>,
    prepared: Arc<Mutex<Option<Prepared>>>,
    /// `create`'s creation lock, which the init inherits and lets go of once `start`
    /// has released it (`ContainerDir::hold_creation_lock`).
    creating: Arc<Mutex<Option<std::fs::File>>>,
}

impl WasmExecutor {
    /// An executor that follows what `create` decided, its container's processes
    /// holding `creating` until `start`.
    pub fn new(decided: HostDecisions, creating: std::fs::File) -> Self {
        WasmExecutor {
            decided: Arc::new(decided),
            prepared: Arc::default(),
            creating: Arc::new(Mutex::new(Some(creating))),
        }
    }

    /// Maps the spec inside the container and loads the module (from the cache, which
    /// `create` filled): everything that can fail before `start`, so that it fails
    /// `create`.
    fn prepare(&self, spec: &Spec) -> wasmux::Result<Prepared> {
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| wasmux::Error::InvalidBundle("config has no process".into()))?;
        let args = process.args().clone().unwrap_or_default();
        let env = process.env().clone().unwrap_or_default();
        let cwd = process.cwd().to_string_lossy().into_owned();
        let mut run_spec = wasmux::container_process_spec(&args, &env, &cwd)?;
        run_spec.limits = self.decided.limits;
        // The init is in the network the spec chose (its own namespace, one joined by
        // path, or the host's when the spec shares it): the guest may use that one.
        run_spec.network = true;
        let entry = match &self.decided.entry {
            Some(fd) => {
                Some(SealedEntry::from_fd(fd.try_clone().map_err(|e| {
                    wasmux::Error::io("the sealed cache entry", e)
                })?))
            }
            None => None,
        };
        let engine = settings::launcher()
            .engine(self.decided.engine.clone())
            .options(self.decided.options.clone())
            .choose_engine(&Requested::default())?;
        let store = entry.as_ref().map(|e| e as &dyn ArtifactStore);
        // A miss compiles here (an engine `create` could not fill the cache for, or a
        // tiered engine's baseline code); nothing is stored from inside a container.
        let (module, event) = engine.load_cached(&run_spec.wasm, store)?;
        tracing::debug!(%event, "module loaded in the container");
        Ok(Prepared {
            module,
            spec: run_spec,
            listen: self.decided.listen.clone(),
        })
    }
}

/// Drops the capability sets the spec's `process.capabilities` leaves out. The runtime
/// spec (and runc) read an absent set as empty; libcontainer leaves it alone, and Go
/// clients omit empty lists (podman's and Docker's `--cap-drop all` write
/// `"capabilities": {}`), which would leave the container every capability. Runs
/// before anything else in the init, while it is one thread (capabilities are per
/// thread; the engine's threads inherit these).
fn drop_unlisted_capabilities(spec: &Spec) -> Result<(), String> {
    let Some(listed) = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
    else {
        return Ok(());
    };
    let mut all = listed.clone();
    let empty = || Some(Default::default());
    if all.bounding().is_none() {
        all.set_bounding(empty());
    }
    if all.effective().is_none() {
        all.set_effective(empty());
    }
    if all.permitted().is_none() {
        all.set_permitted(empty());
    }
    if all.inheritable().is_none() {
        all.set_inheritable(empty());
    }
    if all.ambient().is_none() {
        all.set_ambient(empty());
    }
    let syscall = libcontainer::syscall::syscall::create_syscall();
    libcontainer::capabilities::drop_privileges(&all, syscall.as_ref())
        .map_err(|e| format!("dropping the capabilities the spec leaves out: {e}"))
}

impl Executor for WasmExecutor {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        drop_unlisted_capabilities(spec).map_err(ExecutorValidationError::ArgValidationError)?;
        let prepared = self
            .prepare(spec)
            .map_err(|e| ExecutorValidationError::ArgValidationError(e.to_string()))?;
        if let Ok(mut slot) = self.prepared.lock() {
            *slot = Some(prepared);
        }
        Ok(())
    }

    fn exec(&self, _spec: &Spec) -> Result<(), ExecutorError> {
        // Started: no longer a creation a `delete --force` must look for.
        if let Ok(mut creating) = self.creating.lock() {
            creating.take();
        }
        let prepared = self
            .prepared
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .ok_or_else(|| ExecutorError::Other("the module was not prepared".into()))?;
        let control = RunControl::new();
        // As the container's init, signals without a handler are ignored: `kill`'s
        // SIGTERM must end the guest with 143.
        wasmux::signals::forward_terminating(&control)
            .map_err(|e| ExecutorError::Other(format!("forwarding signals to the guest: {e}")))?;
        let status =
            wasmux::run_or_serve(&prepared.module, prepared.spec, &prepared.listen, &control);
        let code = match status {
            Ok(status) => status.exit_code(),
            Err(e) => {
                eprintln!("wasmux: {e}");
                e.exit_code()
            }
        };
        std::process::exit(code.into())
    }
}
