//! `wasmux run` of a `wasi:http` proxy component serves it: real HTTP requests over
//! TCP, a trapping request answered 500 while the server lives on, SIGTERM ending it
//! with 143 after the requests in flight.

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

#[test]
fn a_wasi_http_component_is_served_until_sigterm() {
    let component = guests::component("http-hello");
    let mut server = wasmux_command(
        &[],
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            component.to_str().unwrap(),
        ],
    )
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

    let pid = rustix::process::Pid::from_raw(server.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = server.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(
        TcpStream::connect(&address).is_err(),
        "still listening after exit"
    );
}
