//! One run: a store with WASI, the memory limiter and the kill hook, then the entry call.

use wasmtime::component::{Linker as ComponentLinker, ResourceTable};
use wasmtime::{Linker, ResourceLimiter, Store, UpdateDeadline, Val};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};
use wasmux_core::{
    Descriptor, Error, MemoryBudget, Module, RawOutcome, RawRun, Result, RunControl, RunSpec,
};

use crate::outcome::outcome_of;
use crate::preview1::CoreWasi;
use crate::{DESCRIPTOR, Linked, NAME, WasmtimeModule, preview1, wasi};

/// Store data: the WASI context plus what the limiter and the kill check need.
pub(crate) struct HostState<W> {
    pub(crate) wasi: W,
    budget: MemoryBudget,
    control: RunControl,
}

/// Store data of a core module run.
pub(crate) type CoreState = HostState<CoreWasi>;
/// Store data of a component run.
pub(crate) type ComponentState = HostState<ComponentWasi>;

/// A preview2 context, its resource table, and `wasi:http`'s (outgoing requests only
/// when the spec grants the network).
pub(crate) struct ComponentWasi {
    ctx: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    network: bool,
    deny: NoOutgoingRequests,
}

impl ComponentWasi {
    /// The component's WASI: `ctx` from the spec, an empty table.
    pub(crate) fn new(ctx: WasiCtx, table: ResourceTable, network: bool) -> Self {
        ComponentWasi {
            ctx,
            table,
            http: WasiHttpCtx::new(),
            network,
            deny: NoOutgoingRequests,
        }
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.ctx,
            table: &mut self.wasi.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.http_view()
    }
}

/// `wasi:http` hooks for a guest without the network: every outgoing request is denied
/// (the default hooks would send it through the host's network).
struct NoOutgoingRequests;

impl WasiHttpHooks for NoOutgoingRequests {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = std::result::Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = std::result::Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = std::result::Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}

impl ComponentState {
    /// The `wasi:http` view: outgoing requests through the process's network when the
    /// spec grants it, denied otherwise.
    pub(crate) fn http_view(&mut self) -> WasiHttpCtxView<'_> {
        let hooks: &mut dyn WasiHttpHooks = if self.wasi.network {
            wasmtime_wasi_http::default_hooks()
        } else {
            &mut self.wasi.deny
        };
        WasiHttpCtxView {
            ctx: &mut self.wasi.http,
            table: &mut self.wasi.table,
            hooks,
        }
    }
}

/// wasmtime asks the limiter before it checks the memory's or table's own maximum, so
/// the budget is told that maximum: a grow past it is refused without being charged or
/// counted as a denial (charged, it would also stay counted after wasmtime refused it,
/// and a later grow within the limit would be denied; found by the differential fuzzer).
impl<W: Send> ResourceLimiter for HostState<W> {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.budget.request_grow_within(
            current as u64,
            desired as u64,
            maximum.map(|maximum| maximum as u64),
        ))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.budget.request_table_grow_within(
            current as u64,
            desired as u64,
            maximum.map(|maximum| maximum as u64),
        ))
    }
}

/// WASI preview1: wasmux's own, as every engine links it (`preview1`).
pub(crate) fn core_linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<CoreState>> {
    let mut linker = Linker::new(engine);
    preview1::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// WASI preview2 for components, with the file-kind rule on `open-at`.
pub(crate) fn component_linker(
    engine: &wasmtime::Engine,
) -> wasmtime::Result<ComponentLinker<ComponentState>> {
    let mut linker = ComponentLinker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    crate::open_check::shadow_open_at(&mut linker)?;
    Ok(linker)
}

/// The linker of a served component: wasmtime-wasi's and `wasi:http`'s asynchronous
/// host functions, so that every request runs as a task on the server's runtime.
/// With `wasi_p3`, WASI 0.3's `wasi:http`, clocks, random and cli too (as `wasmtime
/// serve` links for a proxy); not its file system, whose `open-at` lacks the
/// file-kind rule: a WASI 0.3 component reaches files through WASI 0.2, checked.
pub(crate) fn component_linker_async(
    engine: &wasmtime::Engine,
    wasi_p3: bool,
) -> wasmtime::Result<ComponentLinker<ComponentState>> {
    let mut linker = ComponentLinker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::open_check::shadow_open_at_async(&mut linker)?;
    if wasi_p3 {
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi::p3::clocks::add_to_linker(&mut linker)?;
        wasmtime_wasi::p3::random::add_to_linker(&mut linker)?;
        wasmtime_wasi::p3::cli::add_to_linker(&mut linker)?;
    }
    Ok(linker)
}

/// Makes a store of [`new_store`] give way at each epoch tick (its task yields to the
/// others on the runtime) instead of running on, until it is killed.
pub(crate) fn yield_at_epochs<W: Send + 'static>(store: &mut Store<HostState<W>>) {
    at_epochs(store, || UpdateDeadline::Yield(1));
}

/// At each epoch tick the guest stops if its control was killed, else does `running`.
fn at_epochs<W: Send + 'static>(store: &mut Store<HostState<W>>, running: fn() -> UpdateDeadline) {
    store.epoch_deadline_callback(move |ctx| {
        Ok(if ctx.data().control.killed().is_some() {
            UpdateDeadline::Interrupt
        } else {
            running()
        })
    });
}

impl WasmtimeModule {
    /// A store whose epoch callback stops the guest once `control` is killed.
    fn store<W: Send + 'static>(
        &self,
        wasi: W,
        spec: &RunSpec,
        control: &RunControl,
    ) -> Store<HostState<W>> {
        new_store(&self.engine, wasi, spec, control)
    }
}

/// A store on `engine` whose limiter holds the spec's memory limit and whose epoch
/// callback stops the guest once `control` is killed.
pub(crate) fn new_store<W: Send + 'static>(
    engine: &wasmtime::Engine,
    wasi: W,
    spec: &RunSpec,
    control: &RunControl,
) -> Store<HostState<W>> {
    let state = HostState {
        wasi,
        budget: MemoryBudget::new(spec.limits.memory_bytes),
        control: control.clone(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| state as &mut dyn ResourceLimiter);
    store.set_epoch_deadline(1);
    at_epochs(&mut store, || UpdateDeadline::Continue(1));
    store
}

impl WasmtimeModule {
    fn run_core(
        &self,
        pre: &wasmtime::InstancePre<CoreState>,
        mut spec: RunSpec,
        control: &RunControl,
    ) -> Result<RawRun> {
        let wasi = CoreWasi {
            host: wasmux_wasi_preview1::WasiHost::new(&mut spec, control)?,
            memory: None,
        };
        let mut store = self.store(wasi, &spec, control);
        let engine = self.engine.clone();
        let _hook = control.on_kill(move || engine.increment_epoch());

        let instance = {
            let _span = tracing::debug_span!("instantiate", engine = NAME).entered();
            match pre.instantiate(&mut store) {
                Ok(instance) => instance,
                Err(e) => return instantiate_failure(e, &store, &spec),
            }
        };
        store.data_mut().wasi.memory = instance.get_memory(&mut store, "memory");
        let name = spec.entry.as_deref().unwrap_or("_start");
        let not_runnable = |reason: &str| Error::EntryFunction {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        let func = instance
            .get_func(&mut store, name)
            .ok_or_else(|| not_runnable("no such exported function"))?;
        let ty = func.ty(&store);
        if ty.params().len() != 0 {
            return Err(not_runnable("it takes parameters"));
        }
        let _span = tracing::debug_span!("call", engine = NAME, entry = name).entered();
        // A reactor-style module exporting a custom entry must be initialised first.
        if spec.entry.is_some()
            && let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize")
            && let Err(e) = init.call(&mut store, ())
        {
            return Ok(finish(outcome_of(&e), &store));
        }
        let mut results: Vec<Val> = ty
            .results()
            .map(|t| Val::default_for_ty(&t).unwrap_or(Val::I32(0)))
            .collect();
        let outcome = match func.call(&mut store, &[], &mut results) {
            Ok(()) => RawOutcome::Returned,
            Err(e) => outcome_of(&e),
        };
        Ok(finish(outcome, &store))
    }

    fn run_component(
        &self,
        pre: &wasmtime_wasi::p2::bindings::sync::CommandPre<ComponentState>,
        mut spec: RunSpec,
        control: &RunControl,
    ) -> Result<RawRun> {
        if let Some(name) = &spec.entry {
            return Err(Error::EntryFunction {
                name: name.clone(),
                reason: "components are run through wasi:cli/run".into(),
            });
        }
        let wasi = ComponentWasi::new(
            wasi::builder(&mut spec, control)?.build(),
            ResourceTable::new(),
            spec.network,
        );
        let mut store = self.store(wasi, &spec, control);
        let engine = self.engine.clone();
        let _hook = control.on_kill(move || engine.increment_epoch());
        let command = {
            let _span = tracing::debug_span!("instantiate", engine = NAME).entered();
            match pre.instantiate(&mut store) {
                Ok(command) => command,
                Err(e) => return instantiate_failure(e, &store, &spec),
            }
        };
        let _span = tracing::debug_span!("call", engine = NAME, entry = "wasi:cli/run").entered();
        let outcome = match command.wasi_cli_run().call_run(&mut store) {
            Ok(Ok(())) => RawOutcome::Returned,
            Ok(Err(())) => RawOutcome::Exit(1),
            Err(e) => outcome_of(&e),
        };
        Ok(finish(outcome, &store))
    }
}

fn finish<W>(outcome: RawOutcome, store: &Store<HostState<W>>) -> RawRun {
    RawRun {
        outcome,
        memory_denied: store.data().budget.denied(),
    }
}

/// Instantiation failed: a trap in a start function or a denied initial memory is the
/// guest's outcome; anything else is a link problem.
fn instantiate_failure<W>(
    e: wasmtime::Error,
    store: &Store<HostState<W>>,
    spec: &RunSpec,
) -> Result<RawRun> {
    if store.data().budget.denied() || e.downcast_ref::<wasmtime::Trap>().is_some() {
        return Ok(finish(outcome_of(&e), store));
    }
    Err(Error::link(&spec.wasm.origin, e))
}

impl Module for WasmtimeModule {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn execute(&self, spec: RunSpec, control: &RunControl) -> Result<RawRun> {
        match &self.linked {
            Linked::Core(pre) => self.run_core(pre, spec, control),
            Linked::Component {
                command: Some(pre), ..
            } => self.run_component(pre, spec, control),
            Linked::Component { command: None, .. } => Err(Error::EntryFunction {
                name: "wasi:cli/run".into(),
                reason: "this component only serves wasi:http (it exports no wasi:cli/run)".into(),
            }),
        }
    }

    fn serves_http(&self) -> bool {
        matches!(&self.linked, Linked::Component { proxy: Some(_), .. })
    }

    fn serve(
        &self,
        spec: RunSpec,
        listener: std::net::TcpListener,
        control: &RunControl,
    ) -> Result<RawRun> {
        match &self.linked {
            Linked::Component {
                proxy: Some(pre), ..
            } => self.serve_proxy(pre, spec, listener, control),
            _ => Err(Error::Unsupported {
                engine: NAME,
                feature: "serving wasi:http",
                reason: "the component exports no wasi:http/incoming-handler (nor, with \
                         wasm-component-model-async=on, wasi:http/handler@0.3.0)",
            }),
        }
    }
}
