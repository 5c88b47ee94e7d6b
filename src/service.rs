//! Running a loaded module the way its content asks, the same in every front door: a
//! `wasi:http` proxy component is served, anything else run.

use std::collections::HashMap;

use crate::{Error, ExitStatus, LoadedModule, Result, RunControl, RunSpec};

/// The annotation that says where a container's `wasi:http` component is served.
pub const HTTP_LISTEN_ANNOTATION: &str = "wasmux.io/http-listen";
/// The guest environment variable that says it where annotations do not reach (the
/// containerd shim).
pub const HTTP_LISTEN_VAR: &str = "WASMUX_HTTP_LISTEN";
/// Where a `wasi:http` component is served when nothing says: all addresses, port
/// 8080, as `wasmtime serve` and runwasi's wasmtime shim.
pub const DEFAULT_HTTP_LISTEN: &str = "0.0.0.0:8080";

/// Where a container's `wasi:http` component is served: the annotation, else the
/// variable in the guest's environment, else [`DEFAULT_HTTP_LISTEN`].
pub fn http_listen(
    annotations: Option<&HashMap<String, String>>,
    env: &[(String, String)],
) -> String {
    annotations
        .and_then(|a| a.get(HTTP_LISTEN_ANNOTATION).cloned())
        .or_else(|| {
            env.iter()
                .find(|(key, _)| key == HTTP_LISTEN_VAR)
                .map(|(_, value)| value.clone())
        })
        .unwrap_or_else(|| DEFAULT_HTTP_LISTEN.to_owned())
}

/// Runs `module` with `spec`; a `wasi:http` proxy is served on `listen` instead (bound
/// here, in the caller's network; the address goes to stderr) until `control` is
/// killed.
pub fn run_or_serve(
    module: &LoadedModule,
    spec: RunSpec,
    listen: &str,
    control: &RunControl,
) -> Result<ExitStatus> {
    if !module.serves_http() {
        return module.run(spec, control);
    }
    module.check_servable(&spec)?;
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| Error::io(format!("listening on {listen}"), e))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::io("the listener's address", e))?;
    eprintln!("wasmux: serving wasi:http on http://{address}/");
    module.serve(spec, listener, control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotation_wins_then_the_guest_variable_then_the_default() {
        let env = vec![(HTTP_LISTEN_VAR.to_owned(), "127.0.0.1:9000".to_owned())];
        let annotations =
            HashMap::from([(HTTP_LISTEN_ANNOTATION.to_owned(), "[::1]:8081".to_owned())]);
        assert_eq!(http_listen(Some(&annotations), &env), "[::1]:8081");
        assert_eq!(http_listen(None, &env), "127.0.0.1:9000");
        assert_eq!(http_listen(None, &[]), DEFAULT_HTTP_LISTEN);
    }
}
