//! A command component that uses `wasi:sockets` through Rust's std (wasm32-wasip2):
//! `net loopback` listens on 127.0.0.1, connects to itself and passes a line across;
//! `net connect ADDR` connects to ADDR and writes a line; `net listen` prints the
//! address it listens on and blocks in `accept` for ever. Exit 1 with the error when
//! the network is refused.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("loopback") => loopback(),
        Some("connect") => connect(args.get(2).map_or("", String::as_str)),
        Some("listen") => listen(),
        _ => Err("usage: net loopback | net connect ADDR | net listen".to_owned()),
    };
    match result {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("net: {e}");
            std::process::exit(1);
        }
    }
}

fn loopback() -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("local_addr: {e}"))?;
    let mut client = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    client
        .write_all(b"ping over loopback\n")
        .map_err(|e| format!("write: {e}"))?;
    let (server, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut line = String::new();
    BufReader::new(server)
        .read_line(&mut line)
        .map_err(|e| format!("read: {e}"))?;
    Ok(format!("loopback: {}", line.trim_end()))
}

fn connect(addr: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .write_all(b"hello from the guest\n")
        .map_err(|e| format!("write: {e}"))?;
    Ok(format!("connected to {addr}"))
}

fn listen() -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("local_addr: {e}"))?;
    println!("listening on {addr}");
    loop {
        listener.accept().map_err(|e| format!("accept: {e}"))?;
    }
}
