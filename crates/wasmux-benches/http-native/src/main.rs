//! A native hello HTTP server: the floor a Wasm service is measured against. Listens on
//! `HTTP_LISTEN` (default 0.0.0.0:8080) and answers every request as the http-hello
//! component does, a greeting naming the path.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

#[tokio::main(worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let listen = std::env::var("HTTP_LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("serving on http://{}/", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}

async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    Ok(Response::new(Full::new(Bytes::from(format!(
        "Hello from a native server! ({path})\n"
    )))))
}
