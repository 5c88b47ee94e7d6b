//! Serving a `wasi:http/proxy` component: an HTTP/1.1 server (hyper on tokio) on the
//! listener the caller opened, each request handled by a fresh instance of the
//! pre-linked component (the instance-per-request model of `wasmtime serve`), on a
//! blocking thread, with the run's memory limit and kill applied to every instance.
//! A request whose instance traps is answered 500 and the server goes on; a kill
//! stops accepting, lets requests in flight finish within [`GRACE`], and ends the
//! serve with the kill's outcome.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::sync::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmux_core::{Error, RawOutcome, RawRun, Result, RunControl, RunSpec};

use crate::run::{ComponentState, ComponentWasi, new_store};
use crate::{NAME, WasmtimeModule, wasi};

/// How long requests in flight may take to finish once the server is told to stop.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

type Response = hyper::Response<HyperOutgoingBody>;

/// What every request's instance is made from.
struct Service {
    engine: wasmtime::Engine,
    pre: ProxyPre<ComponentState>,
    spec: RunSpec,
    control: RunControl,
}

impl WasmtimeModule {
    /// Serves `pre`'s component on `listener` until `control` is killed.
    pub(crate) fn serve_proxy(
        &self,
        pre: ProxyPre<ComponentState>,
        spec: RunSpec,
        listener: TcpListener,
        control: &RunControl,
    ) -> Result<RawRun> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the HTTP server's runtime", e))?;
        let service = Arc::new(Service {
            engine: self.engine.clone(),
            pre,
            spec,
            control: control.clone(),
        });
        let stopped = runtime.block_on(accept_until_killed(service, listener))?;
        runtime.shutdown_timeout(GRACE);
        Ok(RawRun {
            outcome: stopped,
            memory_denied: false,
        })
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

/// One request on a fresh instance, on a blocking thread; a trap is a 500.
async fn handle(service: Arc<Service>, request: hyper::Request<Incoming>) -> Response {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let task = tokio::task::spawn_blocking(move || call(&service, request, sender));
    match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => error_response(&format!("the component answered an error: {code:?}")),
        Err(_) => {
            let reason = match task.await {
                Ok(Err(e)) => e,
                _ => "the component did not answer".to_owned(),
            };
            tracing::warn!(engine = NAME, %reason, "request failed");
            error_response(&reason)
        }
    }
}

/// Instantiates and calls `wasi:http/incoming-handler.handle`.
fn call(
    service: &Service,
    request: hyper::Request<Incoming>,
    sender: tokio::sync::oneshot::Sender<std::result::Result<Response, ErrorCode>>,
) -> std::result::Result<(), String> {
    let mut spec = service.spec.clone();
    let wasi = ComponentWasi::new(
        wasi::builder(&mut spec, &service.control)
            .map_err(|e| e.to_string())?
            .build(),
        ResourceTable::new(),
        spec.network,
    );
    let mut store: Store<ComponentState> =
        new_store(&service.engine, wasi, &spec, &service.control);
    let proxy = service
        .pre
        .instantiate(&mut store)
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
        .map_err(|e| format!("the component trapped: {e:#}"))
}

/// A 500 whose body says why (the component's own failure, never the host's details).
fn error_response(reason: &str) -> Response {
    use http_body_util::BodyExt;
    let body = http_body_util::Full::new(bytes::Bytes::from(format!("{reason}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
    response
}
