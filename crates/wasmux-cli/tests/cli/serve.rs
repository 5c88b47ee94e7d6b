//! `wasmux run` of a `wasi:http` proxy component serves it: real HTTP requests over
//! TCP, a trapping request answered 500 and one past its deadline 504 while the server
//! lives on, SIGTERM ending it with 143 after the requests in flight. The same for a
//! WASI 0.3 component, behind `--engine-option wasm-component-model-async=on`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use wasmux_conformance::guests;

use crate::support::wasmux_command;

/// One HTTP/1.1 request; the status code and the body.
fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `wasmux run [extra...] http-hello.wasm` on 127.0.0.1, once it serves: the server
/// and its address.
fn serve(extra: &[&str]) -> (std::process::Child, String) {
    serve_component("http-hello", extra)
}

/// [`serve`] of the guest component `name`.
fn serve_component(name: &str, extra: &[&str]) -> (std::process::Child, String) {
    let component = guests::component(name);
    let mut args = vec!["run", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    args.push(component.to_str().unwrap());
    let mut server = wasmux_command(&[], &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let address = line
        .trim()
        .strip_prefix("wasmux: serving wasi:http on http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("not serving: {line:?}"))
        .to_owned();
    (server, address)
}

/// Ends a server with SIGTERM: 143.
fn stop(mut server: std::process::Child) {
    let pid = rustix::process::Pid::from_raw(server.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(server.wait().unwrap().code(), Some(143));
}

/// Outgoing `wasi:http` requests leave only with `--network`: denied without it, and
/// reaching a listener of this test with it.
#[test]
fn outgoing_requests_need_the_network() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = upstream.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in upstream.incoming().flatten() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    let (server, address) = serve(&[]);
    let (status, body) = get(&address, &format!("/fetch/{target}"));
    stop(server);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("HttpRequestDenied"),
        "without --network: {body}"
    );

    let (server, address) = serve(&["--network"]);
    let (status, body) = get(&address, &format!("/fetch/{target}"));
    stop(server);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("fetch status 204"), "with --network: {body}");
}

#[test]
fn a_wasi_http_component_is_served_until_sigterm() {
    let (server, address) = serve(&[]);
    let (status, body) = get(&address, "/hello?x=1");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Hello from a wasi:http component, served by wasmux! (/hello?x=1)"),
        "{body}"
    );
    let (status, body) = get(&address, "/trap");
    assert_eq!(status, 500, "a trapping request: {body}");
    let (status, _) = get(&address, "/again");
    assert_eq!(status, 200, "the server lives on after a trap");

    stop(server);
    assert!(
        TcpStream::connect(&address).is_err(),
        "still listening after exit"
    );
}

/// `--timeout` is each request's deadline: a request that never ends is answered 504
/// and its instance stopped; the server goes on answering.
#[test]
fn a_request_past_its_deadline_is_answered_504() {
    let (server, address) = serve(&["--timeout", "1"]);
    let (status, body) = get(&address, "/spin");
    let (after, _) = get(&address, "/after");
    stop(server);
    assert_eq!(status, 504, "a request that never ends: {body}");
    assert!(body.contains("deadline"), "{body}");
    assert_eq!(after, 200, "the server lives on after a deadline");
}

/// SIGTERM lets a request in flight finish (its answer arrives, whole) before the
/// server ends with 143.
#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let (server, address) = serve(&[]);
    let in_flight = {
        let address = address.clone();
        std::thread::spawn(move || get(&address, "/sleep/1500"))
    };
    // The request is in the server once its connection is accepted and read; give
    // it that long, well inside its 1.5 s.
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop(server);
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "the request in flight at SIGTERM: {body}");
    assert!(body.contains("(/sleep/1500)"), "{body}");
}

/// Each request's instance sees the preopens (opened once for the server): two
/// requests read a file of a `--dir`.
#[test]
fn every_request_sees_the_preopens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("note.txt"), "from the host directory\n").unwrap();
    let mount = format!("{}::/data", dir.path().display());
    let (server, address) = serve(&["--dir", &mount]);
    let first = get(&address, "/read/data/note.txt");
    let second = get(&address, "/read/data/note.txt");
    stop(server);
    for (status, body) in [first, second] {
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("from the host directory\n"), "{body}");
    }
}

/// A CPU time budget cannot bound one of many requests sharing a process: refused by
/// name before the server listens.
#[test]
fn a_cpu_time_budget_is_refused_for_a_served_component() {
    let component = guests::component("http-hello");
    let out = crate::support::wasmux(&[
        "run",
        "--listen",
        "127.0.0.1:0",
        "--cpu-time",
        "1",
        component.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(126));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("CPU time budget"), "{message}");
    assert!(!message.contains("serving"), "{message}");
}

/// The async ABI switch that WASI 0.3 needs on wasmtime 48.
const ASYNC_ABI: [&str; 2] = ["--engine-option", "wasm-component-model-async=on"];

/// WASI 0.3 (`wasi:http/handler@0.3.0`, an async export streaming its body from a task
/// it spawned) with the switch on: served, a trap answered 500 while the server lives
/// on, SIGTERM 143.
#[test]
fn a_wasi_p3_component_is_served_with_the_async_abi_switched_on() {
    let (server, address) = serve_component("http-hello-p3", &ASYNC_ABI);
    let paths = ["/first", "/second?x=1", "/trap", "/after-the-trap"];
    let answers: Vec<_> = paths.iter().map(|path| get(&address, path)).collect();
    stop(server);
    let greeting = "Hello from a WASI 0.3 wasi:http component, served by wasmux!";
    for (path, (status, body)) in paths.iter().zip(&answers) {
        if *path == "/trap" {
            assert_eq!(*status, 500, "a trapping request: {body}");
            continue;
        }
        assert_eq!(*status, 200, "{path}: {body}");
        // Streamed: chunked, so the greeting is inside the chunk framing.
        assert!(body.contains(&format!("{greeting} ({path})\n")), "{body}");
    }
}

/// `--timeout` bounds a WASI 0.3 request too: one that never ends is answered 504 and
/// its instance dropped, and the server goes on answering.
#[test]
fn a_wasi_p3_request_past_its_deadline_is_answered_504() {
    let mut extra = ASYNC_ABI.to_vec();
    extra.extend(["--timeout", "1"]);
    let (server, address) = serve_component("http-hello-p3", &extra);
    let spun = get(&address, "/spin");
    let after = get(&address, "/after-the-spin");
    stop(server);
    assert_eq!(spun.0, 504, "{}", spun.1);
    assert_eq!(after.0, 200, "the server lives on: {}", after.1);
}

/// Without the switch a WASI 0.3 component is refused before anything listens, by a
/// message that names the switch.
#[test]
fn a_wasi_p3_component_without_the_switch_is_refused_by_name() {
    let component = guests::component("http-hello-p3");
    let out = wasmux_command(
        &[],
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            component.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("wasm-component-model-async=on"), "{stderr}");
    assert!(!stderr.contains("serving"), "{stderr}");
}
