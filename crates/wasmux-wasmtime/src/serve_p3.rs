//! WASI 0.3 requests (`wasi:http/handler@0.3.0`, under `wasm-component-model-async=on`):
//! wasmtime-wasi-http's own handler, which drives each instance's concurrent event
//! loop until its response body and the tasks the guest spawned have ended, told to
//! take one request per instance (wasmux's instance-per-request model, as for WASI
//! 0.2) and to end an instance whose request outlives the run's timeout. The server
//! around it (listener, connections, kill and grace period) is [`serve`](crate::serve)'s.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, Proxy, ProxyHandler, ShouldAccept, WorkerExpiration,
    WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmux_core::{RunControl, RunSpec};

use crate::NAME;
use crate::run::ComponentState;
use crate::serve::{Response, error_response, request_store};

/// What every request's instance is made from.
pub(crate) struct Instances {
    pre: ServicePre<ComponentState>,
    spec: RunSpec,
    /// The spec's preopens, opened once and shared by every request's context.
    files: WasiFilesystemCtx,
    /// One permit per live instance (the pool's), held until its worker drops it:
    /// an instance outlives its response while it streams the body.
    live: Arc<Semaphore>,
}

/// The handler serving `pre`'s component under `spec` (its limits, stdio, network),
/// with at most `max_live` instances alive at once.
pub(crate) fn handler(
    pre: ServicePre<ComponentState>,
    spec: RunSpec,
    files: WasiFilesystemCtx,
    max_live: usize,
) -> ProxyHandler<Instances> {
    ProxyHandler::new(Instances {
        pre,
        spec,
        files,
        live: Arc::new(Semaphore::new(max_live)),
    })
}

/// One request: its instance's answer; 504 when it outlived the deadline, 500 when
/// the instance trapped or gave no response.
pub(crate) async fn handle(
    handler: &ProxyHandler<Instances>,
    request: hyper::Request<Incoming>,
) -> Response {
    let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
    let answer = handler.handle((), request);
    // The deadline is kept here too: a guest spinning without a pause keeps its
    // instance's event loop from polling the handler's own expiry.
    let answer = match handler.state().spec.limits.timeout {
        Some(deadline) => tokio::time::timeout(deadline, answer)
            .await
            .unwrap_or_else(|_| Err(ExpirationError.into())),
        None => answer.await,
    };
    match answer {
        Ok(response) => response,
        Err(error) if error.is::<ExpirationError>() => error_response(
            hyper::StatusCode::GATEWAY_TIMEOUT,
            "the request ran past its deadline",
        ),
        Err(error) => {
            tracing::warn!(engine = NAME, reason = %format!("{error:#}"), "request failed");
            error_response(
                hyper::StatusCode::INTERNAL_SERVER_ERROR,
                "the component trapped or gave no response",
            )
        }
    }
}

impl HandlerState for Instances {
    type StoreData = ComponentState;
    type WorkerExpiration = Deadline;
    type WorkerState = OneRequest;

    async fn instantiate(
        &self,
    ) -> wasmtime::Result<Instance<ComponentState, Deadline, OneRequest>> {
        let permit = self.live.clone().acquire_owned().await?;
        // The instance's own control: nothing kills it but its worker's end (a start
        // that never ends is bounded by the deadline below).
        let control = RunControl::new();
        let mut store = request_store(self.pre.engine(), &self.spec, &self.files, &control)
            .map_err(|e| wasmtime::format_err!("{e}"))?;
        let instantiating = self.pre.instantiate_async(&mut store);
        let service = match self.spec.limits.timeout {
            Some(deadline) => tokio::time::timeout(deadline, instantiating)
                .await
                .map_err(|_| wasmtime::format_err!("instantiating ran past the deadline"))??,
            None => instantiating.await?,
        };
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: ComponentState::http_view,
            expiration: Deadline {
                timeout: self.spec.limits.timeout,
                armed: None,
            },
            state: OneRequest {
                timeout: self.spec.limits.timeout,
                _permit: permit,
            },
        })
    }
}

/// A worker's instance takes one request, and its request expires at the timeout.
pub(crate) struct OneRequest {
    timeout: Option<Duration>,
    _permit: OwnedSemaphorePermit,
}

impl WorkerState for OneRequest {
    type StoreData = ComponentState;
    type RequestData = ();

    fn should_accept_request(&self, _concurrent: usize, total: usize) -> ShouldAccept {
        if total == 0 {
            ShouldAccept::Yes
        } else {
            ShouldAccept::Never
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, ComponentState>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + 'static + Send + Sync>> {
        let timeout = self.timeout;
        Box::pin(async move {
            match timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        })
    }

    fn drop(&self, _store: Store<ComponentState>, result: wasmtime::Result<()>) {
        if let Err(error) = result {
            tracing::warn!(engine = NAME, reason = %format!("{error:#}"), "instance ended");
        }
    }
}

/// How long past a request's deadline its instance may still run before it is
/// dropped: the request's own expiry answers 504 first.
const DROP_AFTER: Duration = Duration::from_secs(1);

/// Ends a worker whose instance is still busy (its request, or what the guest does
/// after answering) [`DROP_AFTER`] past its timeout: an instance spinning past its
/// deadline is dropped, not left running.
pub(crate) struct Deadline {
    timeout: Option<Duration>,
    /// The timer, armed at the request's start.
    armed: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WorkerExpiration for Deadline {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        state: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        let Some(timeout) = this.timeout else {
            return Poll::Pending;
        };
        if state == WorkerStatus::Idle {
            return Poll::Pending;
        }
        // Armed once, at the request's start: the body the instance streams after its
        // response head is within the deadline too. A deadline past what an Instant
        // can hold never comes.
        if this.armed.is_none() {
            let Some(at) = start
                .checked_add(timeout)
                .and_then(|at| at.checked_add(DROP_AFTER))
            else {
                return Poll::Pending;
            };
            this.armed = Some(Box::pin(tokio::time::sleep_until(
                tokio::time::Instant::from_std(at),
            )));
        }
        match &mut this.armed {
            Some(timer) => timer.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}
