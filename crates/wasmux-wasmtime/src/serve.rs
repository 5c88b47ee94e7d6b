//! Serving a `wasi:http/proxy` component: an HTTP/1.1 server (hyper on tokio) on the
//! listener the caller opened, each request handled by a fresh instance of the
//! pre-linked component (the instance-per-request model of `wasmtime serve`) as a task
//! on the server's runtime (wasmtime's asynchronous calls; a running instance yields at
//! every epoch tick), with the run's memory limit applied to every instance and the
//! run's timeout as every request's deadline. A request whose instance traps is
//! answered 500, one past its deadline 504, and the server goes on; a kill stops
//! accepting, lets requests in flight finish within [`GRACE`], and ends the serve with
//! the kill's outcome. A WASI 0.3 component's requests go through wasmtime-wasi-http's
//! handler instead ([`serve_p3`](crate::serve_p3)), in the same server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi_http::handler::ProxyHandler;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmux_core::{Error, RawOutcome, RawRun, Result, RunControl, RunSpec, SIGKILL};

use crate::run::{
    ComponentState, ComponentWasi, component_linker_async, new_store, yield_at_epochs,
};
use crate::serve_p3::{self, Instances};
use crate::{NAME, Served, WasmtimeModule, wasi};

/// How long requests in flight may take to finish once the server is told to stop.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

/// Most requests served at once (each with an instance of its own from the pool);
/// more wait for one of them to end.
const MAX_IN_FLIGHT: u32 = 256;

/// How often a running instance gives way to the others on the runtime's threads.
const EPOCH_TICK: Duration = Duration::from_millis(10);

pub(crate) type Response = hyper::Response<HyperOutgoingBody>;

/// How a request gets its instance and answer, by the world the component exports.
enum Requests {
    /// WASI 0.2: a fresh instance of the component per request, called here.
    P2(Arc<P2Requests>),
    /// WASI 0.3: wasmtime-wasi-http's handler, one instance per request (it holds its
    /// own spec, preopens and permits).
    P3(ProxyHandler<Instances>),
}

/// What every WASI 0.2 request is served with.
struct P2Requests {
    /// The component, linked on the serving engine (`pre.engine()`).
    pre: ProxyPre<ComponentState>,
    /// One permit per request in flight (the pool's instances).
    in_flight: tokio::sync::Semaphore,
    spec: RunSpec,
    /// The spec's preopens, opened once and shared by every request's context.
    files: WasiFilesystemCtx,
}

/// The server's state: how requests are answered, and the kill that stops accepting.
struct Service {
    requests: Requests,
    control: RunControl,
}

impl WasmtimeModule {
    /// Serves `served`'s component on `listener` until `control` is killed.
    pub(crate) fn serve_proxy(
        &self,
        served: &Served,
        spec: RunSpec,
        listener: TcpListener,
        control: &RunControl,
    ) -> Result<RawRun> {
        let (engine, component) = match &self.on_demand {
            Some(config) => pooled(config, served.component())?,
            None => (self.engine.clone(), served.component().clone()),
        };
        let wasi_p3 = matches!(served, Served::P3(_));
        let pre = component_linker_async(&engine, wasi_p3)
            .and_then(|linker| linker.instantiate_pre(&component))
            .map_err(|e| Error::engine(NAME, e))?;
        let files = wasi::shared_files(&spec)?;
        let requests = if wasi_p3 {
            let pre = ServicePre::new(pre).map_err(|e| Error::engine(NAME, e))?;
            Requests::P3(serve_p3::handler(pre, spec, files, MAX_IN_FLIGHT as usize))
        } else {
            Requests::P2(Arc::new(P2Requests {
                pre: ProxyPre::new(pre).map_err(|e| Error::engine(NAME, e))?,
                in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT as usize),
                spec,
                files,
            }))
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the HTTP server's runtime", e))?;
        let service = Arc::new(Service {
            requests,
            control: control.clone(),
        });
        let ticker = Ticker::start(engine)?;
        let stopped = runtime.block_on(accept_until_killed(service, listener))?;
        // The grace period is spent: what still runs is left behind, ended with the
        // process; the ticker stops last, so a spinning instance still yields to the
        // shutdown.
        runtime.shutdown_timeout(Duration::from_millis(100));
        drop(ticker);
        Ok(RawRun {
            outcome: stopped,
            memory_denied: false,
        })
    }
}

/// The component on an engine of the same configuration whose instances come from
/// wasmtime's pooling allocator (as `wasmtime serve`'s): an instance per request then
/// reuses reserved memory and tables instead of mapping and unmapping them, which in
/// a many-threaded server costs a TLB shootdown on every core at each request.
fn pooled(config: &Config, component: &Component) -> Result<(wasmtime::Engine, Component)> {
    let mut config = config.clone();
    let mut pool = PoolingAllocationConfig::default();
    // Room for every request in flight: a component of a few core instances (the
    // program, WASI adapters and shims: eight at most in the toolchains' output, each
    // with a table or none) and one or two memories.
    pool.total_component_instances(MAX_IN_FLIGHT)
        .total_core_instances(MAX_IN_FLIGHT * 8)
        .total_tables(MAX_IN_FLIGHT * 8)
        .total_memories(MAX_IN_FLIGHT * 2);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = wasmtime::Engine::new(&config).map_err(|e| Error::engine(NAME, e))?;
    let bytes = component.serialize().map_err(|e| Error::engine(NAME, e))?;
    // SAFETY: `bytes` are wasmtime's own serialisation, just now, of a component this
    // process compiled or loaded from a verified cache entry, for an engine of the
    // same configuration (the allocator is not part of compiled code).
    #[allow(unsafe_code)]
    let component =
        unsafe { Component::deserialize(&engine, &bytes) }.map_err(|e| Error::engine(NAME, e))?;
    Ok((engine, component))
}

/// Advances an engine's epoch every [`EPOCH_TICK`] for as long as it lives, so that a
/// running instance yields to the other requests' tasks. A thread of its own, not a
/// task: a guest spinning on a runtime thread that holds tokio's timer would stop a
/// timer-driven tick, and with it every yield and deadline.
struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: wasmtime::Engine) -> Result<Ticker> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("wasmux-epoch".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(|e| Error::io("starting the epoch ticker", e))?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until the kill, then waits for the ones in flight (bounded).
async fn accept_until_killed(service: Arc<Service>, listener: TcpListener) -> Result<RawOutcome> {
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("the HTTP listener", e))?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| Error::io("the HTTP listener", e))?;
    let (killed_tx, mut killed_rx) = tokio::sync::watch::channel(false);
    let _hook = service.control.on_kill(move || {
        let _ = killed_tx.send(true);
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = killed_rx.wait_for(|killed| *killed) => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                // A streamed body leaves in several writes; Nagle's algorithm would
                // hold the last one back until the client's delayed ACK (40 ms).
                let _ = stream.set_nodelay(true);
                let service = service.clone();
                connections.spawn(async move {
                    let handler = hyper::service::service_fn(move |request| {
                        let service = service.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(service, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), handler)
                        .await;
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    // Serving ends only when killed: the kill is the outcome (128 + its signal).
    Ok(RawOutcome::Interrupted)
}

/// One request on a fresh instance, as a task of its own, stopped at its deadline; a
/// trap is a 500, a request past its deadline a 504.
async fn handle(service: Arc<Service>, request: hyper::Request<Incoming>) -> Response {
    let requests = match &service.requests {
        Requests::P2(requests) => requests.clone(),
        // Its instances hold their own permits, for as long as each lives.
        Requests::P3(handler) => return serve_p3::handle(handler, request).await,
    };
    // The request's own control: its deadline stops this instance only, and the
    // server's kill leaves it to finish within the grace period.
    let control = RunControl::new();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let timeout = requests.spec.limits.timeout;
    let task = tokio::spawn({
        let control = control.clone();
        async move {
            let _slot = requests
                .in_flight
                .acquire()
                .await
                .map_err(|e| e.to_string())?;
            call(&requests, &control, request, sender).await
        }
    });
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    // The deadline covers the whole call, the body the component streams after its
    // response head included.
    tokio::spawn(watch(task, timeout, control.clone(), ended_tx));
    match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => error_response(
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the component answered an error: {code:?}"),
        ),
        Err(_) => {
            let reason = ended_rx
                .await
                .unwrap_or_else(|_| Err("the request's task ended".to_owned()))
                .err()
                .unwrap_or_else(|| "the component did not answer".to_owned());
            tracing::warn!(engine = NAME, %reason, "request failed");
            let status = if control.killed().is_some() {
                hyper::StatusCode::GATEWAY_TIMEOUT
            } else {
                hyper::StatusCode::INTERNAL_SERVER_ERROR
            };
            error_response(status, &reason)
        }
    }
}

/// Waits for a request's call, killing its instance at `deadline`, and reports how
/// the call ended.
async fn watch(
    task: tokio::task::JoinHandle<std::result::Result<(), String>>,
    deadline: Option<Duration>,
    control: RunControl,
    ended: tokio::sync::oneshot::Sender<std::result::Result<(), String>>,
) {
    tokio::pin!(task);
    let joined = match deadline {
        Some(deadline) => tokio::select! {
            joined = &mut task => joined,
            () = tokio::time::sleep(deadline) => {
                control.kill(SIGKILL);
                task.await.map(|call| {
                    call.map_err(|_| format!("the request ran past its deadline ({deadline:?})"))
                })
            }
        },
        None => task.await,
    };
    let _ = ended.send(joined.unwrap_or_else(|e| Err(format!("the request's task: {e}"))));
}

/// Instantiates and calls `wasi:http/incoming-handler.handle`, stopped when `control`
/// is killed.
async fn call(
    requests: &P2Requests,
    control: &RunControl,
    request: hyper::Request<Incoming>,
    sender: tokio::sync::oneshot::Sender<std::result::Result<Response, ErrorCode>>,
) -> std::result::Result<(), String> {
    let engine = requests.pre.engine();
    let mut store = request_store(engine, &requests.spec, &requests.files, control)
        .map_err(|e| e.to_string())?;
    let engine = engine.clone();
    let _interrupt = control.on_kill(move || engine.increment_epoch());
    let proxy = requests
        .pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| format!("instantiating: {e:#}"))?;
    let mut http = store.data_mut().http_view();
    let request = http
        .new_incoming_request(Scheme::Http, request)
        .map_err(|e| format!("the request: {e:#}"))?;
    let out = http
        .new_response_outparam(sender)
        .map_err(|e| format!("the response: {e:#}"))?;
    proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut store, request, out)
        .await
        .map_err(|e| format!("the component trapped: {e:#}"))
}

/// A request's store on `engine`: the spec's WASI context (stdio of its own, the
/// preopens `files` opened once for every request), the memory limit, the kill by
/// `control`, and a yield to the other requests at every epoch tick.
pub(crate) fn request_store(
    engine: &wasmtime::Engine,
    spec: &RunSpec,
    files: &WasiFilesystemCtx,
    control: &RunControl,
) -> Result<Store<ComponentState>> {
    let mut spec = spec.clone();
    let mut context = wasi::builder_without_files(&mut spec, control)?.build();
    *context.filesystem() = files.clone();
    let wasi = ComponentWasi::new(context, ResourceTable::new(), spec.network);
    let mut store = new_store(engine, wasi, &spec, control);
    yield_at_epochs(&mut store);
    Ok(store)
}

/// An error answer whose body says why (the component's own failure, never the host's
/// details).
pub(crate) fn error_response(status: hyper::StatusCode, reason: &str) -> Response {
    use http_body_util::BodyExt;
    let body = http_body_util::Full::new(bytes::Bytes::from(format!("{reason}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = status;
    response
}
