//! Answers every request with a greeting naming the method and path; `/trap` traps
//! (the server answers 500 and lives on); `/spin` never ends (a deadline's work);
//! `/sleep/MS` answers after MS milliseconds (a request in flight); `/read/PATH`
//! answers with the file at `/PATH` (the preopens); `/fetch/HOST:PORT` makes an
//! outgoing request to `http://HOST:PORT/` and answers with what became of it.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        if path == "/trap" {
            panic!("asked to trap");
        }
        if path == "/spin" {
            let mut turns = 0u64;
            loop {
                turns = std::hint::black_box(turns.wrapping_add(1));
            }
        }
        if let Some(millis) = path.strip_prefix("/sleep/").and_then(|ms| ms.parse::<u64>().ok()) {
            wasi::clocks::monotonic_clock::subscribe_duration(millis * 1_000_000).block();
        }
        let text = if let Some(authority) = path.strip_prefix("/fetch/") {
            format!("{}\n", fetch(authority))
        } else if let Some(file) = path.strip_prefix("/read") {
            std::fs::read_to_string(file).unwrap_or_else(|e| format!("reading {file}: {e}\n"))
        } else {
            format!("Hello from a wasi:http component, served by wasmux! ({path})\n")
        };
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("the body of a new response");
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().expect("the body's stream");
        stream
            .blocking_write_and_flush(text.as_bytes())
            .expect("writing the body");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finishing the body");
    }
}

/// An outgoing GET of `http://AUTHORITY/`: its status, or why there is none.
fn fetch(authority: &str) -> String {
    use wasi::http::outgoing_handler;
    use wasi::http::types::{OutgoingRequest, Scheme};
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some("/"));
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return format!("fetch refused: {code:?}"),
    };
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => format!("fetch status {}", response.status()),
        Some(Ok(Err(code))) => format!("fetch failed: {code:?}"),
        other => format!("fetch: {other:?}"),
    }
}

wasi::http::proxy::export!(Hello);

fn main() {}
