//! Answers every request with a greeting naming the method and path, from a WASI 0.3
//! handler (an async export, the body streamed by a task of its own); `/trap` traps
//! (the server answers 500 and lives on); `/spin` never ends (a deadline's work).

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

struct Hello;

impl wasip3::exports::http::handler::Guest for Hello {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path = request.get_path_with_query().unwrap_or_default();
        if path == "/trap" {
            panic!("asked to trap");
        }
        if path == "/spin" {
            let mut turns = 0u64;
            loop {
                turns = std::hint::black_box(turns.wrapping_add(1));
            }
        }
        let text = format!("Hello from a WASI 0.3 wasi:http component, served by wasmux! ({path})\n");
        let (mut body, contents) = wit_stream::new();
        let (trailers, trailers_read) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(Fields::new(), Some(contents), trailers_read);
        drop(trailers);
        wit_bindgen::spawn_local(async move {
            let unwritten = body.write_all(text.into_bytes()).await;
            assert!(unwritten.is_empty(), "the client left");
        });
        Ok(response)
    }
}

wasip3::http::service::export!(Hello);

fn main() {}
