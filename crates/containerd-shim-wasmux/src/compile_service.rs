//! Compiling outside every container. Cache entries are native code that other
//! containers on the node map and run, so no container may write one: a container's
//! init (which runs the guest after `pivot_root`, as its user, under its seccomp
//! profile) asks a helper process of the shim for its module's entry and gets back a
//! sealed copy (a memfd no process can change). The helper runs on the host, outside
//! every container, and is the only writer of the node's cache.
//!
//! The shim starts the helper first thing, handing it one end of a `SOCK_SEQPACKET`
//! socket pair as its stdin; the other end is inherited by containerd-shim-wasm's
//! zygote and so by every container init. A request is one message: the engine's name,
//! with the module (a memfd) and a socket for the answer attached. The helper exits when
//! every holder of the shim's end has gone.

use std::fs::File;
use std::io::{IoSlice, IoSliceMut, Read, Seek, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use wasmux::{
    ArtifactStore, DynEngine, EngineOptions, Launcher, PrecompileCache, SealedEntry, WasmBinary,
};

/// The hidden command line argument that makes this binary the helper.
pub(crate) const SERVICE_ARG: &str = "__compile-service";

/// How long a container waits for its entry: a bound on a compile, not a timing.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest message (an engine name, or an error).
const MESSAGE_LIMIT: usize = 4096;

/// The largest module the helper reads: the bound wasmux puts on an entrypoint.
const MAX_MODULE_BYTES: u64 = 512 << 20;

/// The shim's end of the socket pair, inherited by every container init.
static CLIENT: OnceLock<Option<OwnedFd>> = OnceLock::new();

/// Starts the helper with the cache directory `dir` (`None`: the cache is off, and
/// containers compile for themselves, storing nothing). Called once, first thing in
/// `main`, before containerd-shim-wasm forks its zygote. A helper that cannot start
/// costs the cache, not the shim.
pub(crate) fn start(dir: Option<PathBuf>) {
    CLIENT.get_or_init(|| {
        let dir = dir?;
        spawn(&dir)
            .inspect_err(|e| {
                eprintln!(
                    "containerd-shim-wasmux: no compile helper, containers compile for themselves: {e}"
                )
            })
            .ok()
    });
}

fn spawn(dir: &std::path::Path) -> std::io::Result<OwnedFd> {
    let (client, server) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Command::new(std::env::current_exe()?)
        .arg(SERVICE_ARG)
        .arg(dir)
        .stdin(Stdio::from(server))
        .stdout(Stdio::null())
        .spawn()?;
    Ok(client)
}

/// In a container's init: a sealed copy of the cache entry of `wasm` on `engine`,
/// compiled and stored by the helper if need be; `None` (with a warning on the
/// container's stderr) when there is no helper or it cannot give one.
pub(crate) fn entry_for(
    engine: &dyn DynEngine,
    options: &EngineOptions,
    wasm: &WasmBinary,
) -> Option<SealedEntry> {
    let client = CLIENT.get()?.as_ref()?;
    request(client, &engine_request(engine.name(), options), wasm)
        .inspect_err(|e| eprintln!("wasmux: no precompiled code from the node cache: {e}"))
        .ok()
        .flatten()
        .map(SealedEntry::from_fd)
}

fn request(client: &OwnedFd, engine: &str, wasm: &WasmBinary) -> Result<Option<OwnedFd>, String> {
    let module = rustix::fs::memfd_create("wasmux-module", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| format!("memfd: {e}"))?;
    File::from(module.try_clone().map_err(|e| e.to_string())?)
        .write_all(&wasm.bytes)
        .map_err(|e| format!("writing the module: {e}"))?;
    let (answer, answer_remote) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| format!("socketpair: {e}"))?;
    send(
        client,
        engine.as_bytes(),
        &[module.as_fd(), answer_remote.as_fd()],
    )
    .map_err(|e| format!("asking the compile helper: {e}"))?;
    drop(answer_remote);
    let mut fds = [PollFd::new(&answer, PollFlags::IN)];
    let timeout = rustix::event::Timespec {
        tv_sec: ANSWER_TIMEOUT.as_secs() as i64,
        tv_nsec: 0,
    };
    if rustix::event::poll(&mut fds, Some(&timeout)).map_err(|e| e.to_string())? == 0 {
        return Err("the compile helper did not answer".into());
    }
    let (text, fd) = receive(&answer).map_err(|e| format!("the helper's answer: {e}"))?;
    match (text.as_str(), fd) {
        ("entry", Some(fd)) => Ok(Some(fd)),
        ("none", _) => Ok(None),
        (other, _) => Err(other.to_owned()),
    }
}

/// A request's text: the engine's name, a newline, its options (`EngineOptions`'s
/// comma-separated texts), so the helper builds the same engine and the entry it
/// hands back is the one the container's engine loads.
fn engine_request(engine: &str, options: &EngineOptions) -> String {
    format!("{engine}\n{}", options.to_args().join(","))
}

/// One message with descriptors attached.
fn send(
    socket: &OwnedFd,
    bytes: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> std::io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("too many descriptors"));
    }
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// One message and the first descriptor attached, if any (the rest are closed).
fn receive(socket: &OwnedFd) -> std::io::Result<(String, Option<OwnedFd>)> {
    let (text, mut fds) = receive_all(socket)?;
    let first = if fds.is_empty() {
        None
    } else {
        Some(fds.remove(0))
    };
    Ok((text, first))
}

fn receive_all(socket: &OwnedFd) -> std::io::Result<(String, Vec<OwnedFd>)> {
    let mut buffer = vec![0u8; MESSAGE_LIMIT];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let message = rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut buffer)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if message.bytes == 0 && fds.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buffer.truncate(message.bytes);
    Ok((String::from_utf8_lossy(&buffer).into_owned(), fds))
}

/// The helper's loop: one thread per request, until every container and the shim have
/// closed their end.
pub(crate) fn serve(dir: PathBuf) -> std::process::ExitCode {
    let cache = match PrecompileCache::open(&dir) {
        Ok(cache) => cache,
        Err(e) => {
            eprintln!(
                "containerd-shim-wasmux: precompile cache {} unusable: {e}",
                dir.display()
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    let socket: OwnedFd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .unwrap_or_else(|_| {
            std::process::exit(1);
        });
    loop {
        let (engine, mut fds) = match receive_all(&socket) {
            Ok(request) => request,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(_) => continue,
        };
        if fds.len() != 2 {
            continue;
        }
        let answer = fds.remove(1);
        let module = fds.remove(0);
        let cache = cache.clone();
        std::thread::spawn(move || {
            let (text, fd) = match compile(&cache, &engine, module) {
                Ok(Some(entry)) => ("entry".to_owned(), Some(entry)),
                Ok(None) => ("none".to_owned(), None),
                Err(e) => (e, None),
            };
            let fds: Vec<_> = fd.iter().map(|fd| fd.as_fd()).collect();
            let _ = send(&answer, text.as_bytes(), &fds);
        });
    }
    std::process::ExitCode::SUCCESS
}

/// Compiles (if the cache lacks it) and seals the entry of the module in `module` on
/// the engine and options `request` names ([`engine_request`]).
fn compile(
    cache: &PrecompileCache,
    request: &str,
    module: OwnedFd,
) -> Result<Option<OwnedFd>, String> {
    let (engine, options) = request.split_once('\n').unwrap_or((request, ""));
    let options = EngineOptions::parse_list(options).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    let mut module = File::from(module);
    // The sender wrote it through the same open file: start from the beginning.
    module
        .rewind()
        .map_err(|e| format!("reading the module: {e}"))?;
    module
        .take(MAX_MODULE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the module: {e}"))?;
    let wasm = WasmBinary::new(bytes, "the container's module").map_err(|e| e.to_string())?;
    let engine = Launcher::new()
        .engine(engine)
        .options(options)
        .choose_engine(&wasmux::Requested::default())
        .map_err(|e| e.to_string())?;
    let Some(key) = engine.artifact_key(&wasm, cache) else {
        return Ok(None);
    };
    if let Some(entry) = cache.sealed_entry(&key).map_err(|e| e.to_string())? {
        return Ok(Some(entry));
    }
    let event = engine
        .fill_cache(&wasm, cache as &dyn ArtifactStore)
        .map_err(|e| e.to_string())?;
    if event.is_warning() {
        return Err(event.to_string());
    }
    cache.sealed_entry(&key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(bytes: &[u8]) -> OwnedFd {
        let fd = rustix::fs::memfd_create("test-module", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        File::from(fd.try_clone().unwrap())
            .write_all(bytes)
            .unwrap();
        fd
    }

    #[test]
    fn the_helper_stores_once_and_hands_out_copies_no_one_can_write() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = PrecompileCache::open(tmp.path().join("modules")).unwrap();
        let wasm = match wasmux::sniff(b"(module (func (export \"_start\")))".to_vec(), "t.wat") {
            Ok(wasmux::Sniffed::Wasm(wasm)) => wasm,
            other => panic!("{other:?}"),
        };
        let plain = engine_request("wasmtime", &EngineOptions::new());
        let first = compile(&cache, &plain, module(&wasm.bytes))
            .unwrap()
            .unwrap();
        let stored = || std::fs::read_dir(cache.dir()).unwrap().count();
        assert_eq!(stored(), 1);
        let second = compile(&cache, &plain, module(&wasm.bytes))
            .unwrap()
            .unwrap();
        assert_eq!(stored(), 1, "a second request maps the stored entry");
        // Another configuration is another entry, loadable by an engine built so.
        let baseline = EngineOptions::new().with_tier(wasmux::Tier::Baseline);
        let winch = compile(
            &cache,
            &engine_request("wasmtime", &baseline),
            module(&wasm.bytes),
        )
        .unwrap()
        .unwrap();
        assert_eq!(stored(), 2);
        let engine = Launcher::new()
            .engine("wasmtime")
            .options(baseline)
            .choose_engine(&wasmux::Requested::default())
            .unwrap();
        let (_, event) = engine
            .load_cached(&wasm, Some(&SealedEntry::from_fd(winch)))
            .unwrap();
        assert_eq!(event, wasmux::CacheEvent::Hit);
        for entry in [first, second] {
            let mut copy = File::from(entry);
            assert!(
                copy.write_all(b"planted code").is_err(),
                "a sealed copy was written"
            );
            let engine = Launcher::new()
                .engine("wasmtime")
                .choose_engine(&wasmux::Requested::default())
                .unwrap();
            let sealed = SealedEntry::from_fd(copy.into());
            let (_, event) = engine.load_cached(&wasm, Some(&sealed)).unwrap();
            assert_eq!(event, wasmux::CacheEvent::Hit);
        }
        let err = compile(&cache, &plain, module(b"not wasm")).unwrap_err();
        assert!(err.contains("not a Wasm binary"), "{err}");
    }
}
