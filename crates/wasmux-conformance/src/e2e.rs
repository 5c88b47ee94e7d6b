//! End-to-end tests with the real container tools (podman, buildah, containerd), shared
//! by `wasmux-oci`'s and the containerd shim's tests: finding the tools, images built
//! with buildah, a private containerd, named cases, and leaving the machine as it was
//! (private state only, mounts undone, the daemon stopped by its PID).

// Test support: a failed step is the calling test's failure, with the step named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::guests::core_module;

/// Whether `tools` are all installed. When one is missing the test is skipped with a
/// message, unless `WASMUX_REQUIRE_E2E=1` (CI) makes that a failure.
pub fn tools_available(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var("WASMUX_REQUIRE_E2E").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: WASMUX_REQUIRE_E2E=1 but {missing:?} not installed"
    );
    eprintln!(
        "SKIPPED {test}: {missing:?} not installed (set WASMUX_REQUIRE_E2E=1 to require them)"
    );
    false
}

/// buildah with private storage under `dir`.
#[derive(Debug)]
pub struct Buildah {
    root: PathBuf,
    runroot: PathBuf,
}

/// An image to build: files from the host, entrypoint, annotations.
#[derive(Debug)]
pub struct Image<'a> {
    /// Local name (`docker.io/library/NAME:latest` once pushed to an archive).
    pub name: &'a str,
    /// Host file → path in the image.
    pub files: Vec<(PathBuf, &'a str)>,
    /// The image's entrypoint.
    pub entrypoint: &'a str,
    /// Image annotations.
    pub annotations: &'a [(&'a str, &'a str)],
}

impl Buildah {
    /// buildah with its storage at `root` and `runroot`.
    pub fn new(root: PathBuf, runroot: PathBuf) -> Self {
        Buildah { root, runroot }
    }

    /// The storage flags podman and buildah share.
    pub fn storage_args(&self) -> Vec<String> {
        vec![
            "--root".into(),
            self.root.display().to_string(),
            "--runroot".into(),
            self.runroot.display().to_string(),
            "--storage-driver".into(),
            "overlay".into(),
        ]
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("buildah")
            .args(self.storage_args())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// `from scratch`, copy, entrypoint, annotations, `commit --format oci`.
    pub fn build(&self, image: &Image) {
        let ctr = self.run(&["from", "scratch"]);
        for (host, guest) in &image.files {
            self.run(&["copy", &ctr, host.to_str().unwrap(), guest]);
        }
        let entrypoint = format!("[\"{}\"]", image.entrypoint);
        let mut config = vec!["config", "--entrypoint", &entrypoint];
        let annotations: Vec<String> = image
            .annotations
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for a in &annotations {
            config.extend(["--annotation", a]);
        }
        config.push(&ctr);
        self.run(&config);
        self.run(&["commit", "--format", "oci", "--rm", &ctr, image.name]);
    }

    /// Writes `image` as an OCI archive named `docker.io/library/NAME:latest`.
    pub fn push_archive(&self, image: &str, file: &Path) {
        let dest = format!(
            "oci-archive:{}:docker.io/library/{image}:latest",
            file.display()
        );
        self.run(&["push", image, &dest]);
    }
}

/// Compiles the C file `source` into the static binary `out`.
fn compile_static(source: &str, out: &Path) {
    let status = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(out)
        .arg(source)
        .status()
        .unwrap();
    assert!(status.success(), "gcc -static {source} failed");
}

/// The images both tests use: Wasm guests (`compat`) and a static native hello.
pub fn standard_images(dir: &Path) -> Vec<Image<'static>> {
    let native = dir.join("native-hello");
    compile_static(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../wasmux-benches/hello.c"),
        &native,
    );
    let bad = dir.join("bad.wasm");
    std::fs::write(&bad, b"\0asm\x01\0\0\0\x05\x03").unwrap();
    const WASM: &[(&str, &str)] = &[("module.wasm.image/variant", "compat")];
    vec![
        Image {
            name: "wasm-hello",
            files: vec![(core_module("hello"), "/hello.wasm")],
            entrypoint: "/hello.wasm",
            annotations: WASM,
        },
        Image {
            name: "wasm-probe",
            files: vec![(core_module("probe"), "/probe.wasm")],
            entrypoint: "/probe.wasm",
            annotations: WASM,
        },
        Image {
            name: "wasm-net",
            files: vec![(crate::guests::component("net"), "/net.wasm")],
            entrypoint: "/net.wasm",
            annotations: WASM,
        },
        Image {
            name: "wasm-http",
            files: vec![(crate::guests::component("http-hello"), "/http-hello.wasm")],
            entrypoint: "/http-hello.wasm",
            annotations: WASM,
        },
        Image {
            name: "wasm-http-p3",
            files: vec![(
                crate::guests::component("http-hello-p3"),
                "/http-hello-p3.wasm",
            )],
            entrypoint: "/http-hello-p3.wasm",
            annotations: WASM,
        },
        Image {
            name: "wasm-missing",
            files: vec![(core_module("hello"), "/hello.wasm")],
            entrypoint: "/missing.wasm",
            annotations: WASM,
        },
        Image {
            name: "wasm-invalid",
            files: vec![(bad, "/bad.wasm")],
            entrypoint: "/bad.wasm",
            annotations: WASM,
        },
        Image {
            name: "native-hello",
            files: vec![(native, "/hello")],
            entrypoint: "/hello",
            annotations: &[("module.wasm.image/variant", "compat-smart")],
        },
    ]
}

/// A pod sandbox image (`wasmux-pause`, a static native process that waits for
/// SIGTERM): what containerd's CRI plugin starts first in every pod.
pub fn pause_image(dir: &Path) -> Image<'static> {
    let pause = dir.join("pause");
    compile_static(concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/pause.c"), &pause);
    Image {
        name: "wasmux-pause",
        files: vec![(pause, "/pause")],
        entrypoint: "/pause",
        annotations: &[],
    }
}

/// Named checks run in order; the test fails at the end listing every failed one.
#[derive(Debug, Default)]
pub struct Cases {
    failures: Vec<String>,
    passed: usize,
}

impl Cases {
    /// Runs one check; a panic inside is that case's failure.
    pub fn case(&mut self, name: &str, check: impl FnOnce() -> Result<(), String>) {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).unwrap_or_else(|panic| {
                Err(panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default())
            });
        match outcome {
            Ok(()) => {
                self.passed += 1;
                eprintln!("ok   {name}");
            }
            Err(why) => {
                eprintln!("FAIL {name}: {why}");
                self.failures.push(format!("{name}: {why}"));
            }
        }
    }

    /// Fails the test if any case failed.
    pub fn finish(self, test: &str) {
        assert!(
            self.failures.is_empty(),
            "{test}: {} of {} cases failed:\n{}",
            self.failures.len(),
            self.failures.len() + self.passed,
            self.failures.join("\n")
        );
    }
}

/// Compares an output's exit code, stdout and stderr with what a case expects.
pub fn expect(out: &Output, code: i32, stdout: Option<&str>) -> Result<(), String> {
    let got = out.status.code();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if got != Some(code) {
        return Err(format!(
            "exit {got:?}, want {code}; stdout {text:?}; stderr {err:?}"
        ));
    }
    match stdout {
        Some(want) if !text.contains(want) => {
            Err(format!("stdout {text:?} lacks {want:?}; stderr {err:?}"))
        }
        _ => Ok(()),
    }
}

/// A command that must fail with `needle` in its stderr (wasmux's one-line error).
pub fn expect_error(out: &Output, needle: &str) -> Result<(), String> {
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !err.contains(needle) {
        return Err(format!("want a failure saying {needle:?}, got {out:?}"));
    }
    Ok(())
}

/// `wasi:sockets` reach the container's network and only it: a listener of this test on
/// the host's 127.0.0.1 is out of reach from the container's own network namespace
/// (`isolated`, the client's default) and reached from the host's (`host`, the client's
/// host-network option). `run` takes the client's flags before the image and the
/// guest's arguments after it, split by `--`.
pub fn network_case(
    run: impl Fn(&[&str], &[&str]) -> std::process::Output,
    host: &[&str],
) -> Result<(), String> {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let isolated = run(&[], &["connect", &addr]);
    if isolated.status.success() {
        return Err(format!(
            "reached the host's {addr} from the container's network: {isolated:?}"
        ));
    }
    expect(
        &run(host, &["connect", &addr]),
        0,
        Some(&format!("connected to {addr}")),
    )?;
    let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    (line == "hello from the guest\n")
        .then_some(())
        .ok_or(format!("the listener read {line:?}"))
}

/// A `wasi:http` component served in a container: `start` runs the `wasm-http` image
/// detached, in the host's network, serving on the address it is given (on 127.0.0.1);
/// the answer to a request is checked (waiting for the server, a liveness bound); then
/// `stop` ends it and returns its exit code, which must be 143 (SIGTERM).
pub fn http_case(
    start: impl FnOnce(&str) -> Result<(), String>,
    stop: impl FnOnce() -> Result<i32, String>,
) -> Result<(), String> {
    http_exchange_case(
        "/from-the-host",
        |answer| {
            (answer.starts_with("HTTP/1.1 200")
                && answer.contains("served by wasmux! (/from-the-host)"))
            .then_some(())
            .ok_or(format!("unexpected answer: {answer:?}"))
        },
        start,
        stop,
    )
}

/// [`http_case`] with another request: `GET path`, its whole response judged by
/// `check`.
pub fn http_exchange_case(
    path: &str,
    check: impl FnOnce(&str) -> Result<(), String>,
    start: impl FnOnce(&str) -> Result<(), String>,
    stop: impl FnOnce() -> Result<i32, String>,
) -> Result<(), String> {
    let address = free_local_address()?;
    start(&address)?;
    let answer = get_once_served(&address, path);
    let code = stop()?;
    check(&answer?)?;
    (code == 143)
        .then_some(())
        .ok_or(format!("the service exited {code}, not 143"))
}

/// An address on 127.0.0.1 with a port nothing listens on now.
fn free_local_address() -> Result<String, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    Ok(format!("127.0.0.1:{port}"))
}

/// `GET path` on `address` once something serves there (a liveness bound of 60 s):
/// the whole response.
fn get_once_served(address: &str, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = std::net::TcpStream::connect(address).and_then(|mut stream| {
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
            )?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        });
        match attempt {
            Ok(response) => return Ok(response),
            Err(e) if Instant::now() > until => {
                return Err(format!("never served on {address}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// [`http_case`] through `ctr run` (containerd's runc shim or a wasmux shim): `run`
/// makes the `ctr run` command from ctr's flags, a container ID and the guest's argv,
/// `ctr` runs another ctr command; the service is stopped with `ctr task kill`
/// (SIGTERM).
pub fn ctr_http_case(
    ctr: impl Fn(&[&str]) -> Output,
    run: impl Fn(&[&str], &str, &[&str]) -> Command,
) -> Result<(), String> {
    let service: std::cell::RefCell<Option<Child>> = std::cell::RefCell::new(None);
    let result = http_case(
        |address| {
            let listen = format!("WASMUX_HTTP_LISTEN={address}");
            let child = run(
                &["--net-host", "--env", &listen],
                "service",
                &["/http-hello.wasm"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
            *service.borrow_mut() = Some(child);
            Ok(())
        },
        || {
            let _ = ctr(&["task", "kill", "service"]);
            let child = service.borrow_mut().take();
            let status = child
                .ok_or("no service")?
                .wait()
                .map_err(|e| e.to_string())?;
            status.code().ok_or("killed by a signal".to_owned())
        },
    );
    if let Some(mut child) = service.into_inner() {
        let _ = ctr(&["task", "kill", "--signal", "SIGKILL", "service"]);
        let _ = child.wait();
    }
    result
}

/// [`network_case`] through `ctr run` (containerd's runc shim or a wasmux shim): `run`
/// takes ctr's flags, a fresh container ID and the guest's argv; the host network is
/// `--net-host`.
pub fn ctr_network_case(run: impl Fn(&[&str], &str, &[&str]) -> Output) -> Result<(), String> {
    let runs = std::sync::atomic::AtomicUsize::new(0);
    network_case(
        |flags, args| {
            let id = format!(
                "net-{}",
                runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let mut guest = vec!["/net.wasm"];
            guest.extend_from_slice(args);
            run(flags, &id, &guest)
        },
        &["--net-host"],
    )
}

/// The precompile cache at `dir` holds an entry made by the compiler `fingerprint`
/// names (`winch-`, `cranelift-`): each entry carries its origin as text, which says
/// whether engine options reached the process that compiled it.
pub fn cache_holds_code_of(dir: &Path, fingerprint: &str) -> Result<(), String> {
    let needle = format!("fingerprint={fingerprint}");
    let found = std::fs::read_dir(dir)
        .map_err(|e| format!("the cache {}: {e}", dir.display()))?
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .any(|entry| entry.windows(needle.len()).any(|w| w == needle.as_bytes()));
    found.then_some(()).ok_or(format!(
        "no {fingerprint} entry in {}: the engine options did not reach the compiler",
        dir.display()
    ))
}

/// Removes the (empty) parent cgroup `name` that containers of a test were placed
/// under, from every hierarchy: the runtime removes only each container's own cgroup.
pub fn remove_cgroup_parent(name: &str) {
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for hierarchy in hierarchies.filter_map(Result::ok) {
            let _ = std::fs::remove_dir(hierarchy.path().join(name));
        }
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(name));
}

/// Undoes every mount under `dir` (deepest first): the private storage's overlays.
pub fn unmount_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").arg("-l").arg(point).status();
    }
}

/// A containerd started for one test: its own root, state, sockets and config under a
/// directory, stopped by its PID when dropped.
#[derive(Debug)]
pub struct Containerd {
    dir: PathBuf,
    namespace: &'static str,
    /// The daemon, replaced by [`restart`](Containerd::restart).
    daemon: std::sync::Mutex<Child>,
    /// Its environment beyond this process's (PATH included when prefixed).
    env: Vec<(String, OsString)>,
}

/// How a test's containerd is set up beyond its private root, state and sockets.
#[derive(Debug, Default)]
pub struct ContainerdSetup<'a> {
    /// Put in front of its PATH: where it finds `containerd-shim-*` binaries.
    pub path_prefix: Option<&'a Path>,
    /// Added to its environment, and so to its shims'.
    pub env: Vec<(&'a str, OsString)>,
    /// The CRI plugin's section (TOML under `[plugins."io.containerd.grpc.v1.cri"]`,
    /// sub-tables included); `None` disables the plugin.
    pub cri: Option<String>,
}

impl Containerd {
    /// Starts containerd under `dir` as `setup` says and waits until it answers.
    pub fn start(dir: &Path, namespace: &'static str, setup: ContainerdSetup<'_>) -> Self {
        let config = dir.join("containerd.toml");
        let p = |name: &str| dir.join(name).display().to_string();
        let (disabled, cri) = match setup.cri {
            Some(cri) => (String::new(), cri),
            None => (
                r#"disabled_plugins = ["io.containerd.grpc.v1.cri"]"#.to_owned(),
                String::new(),
            ),
        };
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{root}"
state = "{state}"
{disabled}
[grpc]
  address = "{grpc}"
[ttrpc]
  address = "{ttrpc}"
[debug]
  address = "{debug}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
{cri}
"#,
                root = p("root"),
                state = p("state"),
                grpc = p("grpc.sock"),
                ttrpc = p("ttrpc.sock"),
                debug = p("debug.sock"),
                opt = p("opt"),
            ),
        )
        .unwrap();
        let mut env: Vec<(String, OsString)> = setup
            .env
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        if let Some(prefix) = setup.path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            env.push(("PATH".into(), format!("{}:{path}", prefix.display()).into()));
        }
        let daemon = spawn_containerd(dir, &env);
        let containerd = Containerd {
            dir: dir.to_owned(),
            namespace,
            daemon: std::sync::Mutex::new(daemon),
            env,
        };
        containerd.await_answer();
        containerd
    }

    /// Stops the daemon (SIGTERM, by its PID) and starts it again with the same
    /// configuration, as a node's service manager restarts it; its shims, and so its
    /// containers, live on.
    pub fn restart(&self) {
        let mut daemon = self.daemon.lock().unwrap_or_else(|p| p.into_inner());
        stop_by_pid(&mut daemon);
        *daemon = spawn_containerd(&self.dir, &self.env);
        drop(daemon);
        self.await_answer();
    }

    fn await_answer(&self) {
        let until = Instant::now() + Duration::from_secs(60);
        while !self.ctr(&["version"]).status.success() {
            assert!(Instant::now() < until, "containerd did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// containerd's gRPC socket (the CRI API's too).
    pub fn grpc_socket(&self) -> PathBuf {
        self.dir.join("grpc.sock")
    }

    /// `ctr` against this containerd and namespace.
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.grpc_socket())
            .args(["--namespace", self.namespace])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `ctr` to completion.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_command(args).output().unwrap()
    }

    /// Builds `images` with `buildah` and imports them, then empties buildah's storage.
    pub fn import(&self, buildah: &Buildah, images: &[Image<'_>]) {
        for image in images {
            buildah.build(image);
            let archive = self.dir.join(format!("{}.tar", image.name));
            buildah.push_archive(image.name, &archive);
            let import = self.ctr(&["image", "import", archive.to_str().unwrap()]);
            assert!(import.status.success(), "import {}: {import:?}", image.name);
        }
        let _ = Command::new("buildah")
            .args(buildah.storage_args())
            .args(["rmi", "--all", "--force"])
            .output();
        unmount_under(&buildah.root);
    }
}

/// containerd with the configuration `Containerd::start` wrote under `dir`, its output
/// appended to `dir/containerd.log`.
fn spawn_containerd(dir: &Path, env: &[(String, OsString)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("containerd.log"))
        .unwrap();
    Command::new("containerd")
        .arg("--config")
        .arg(dir.join("containerd.toml"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// SIGTERM to `child` by its PID, then reaps it.
fn stop_by_pid(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let _ = child.wait();
}

/// containerd restarted while a Wasm container runs: the task is still listed as
/// running afterwards, `ctr task kill` still ends it, and its exit code (143) reaches
/// `ctr task delete` (which reports it). `run_detached(id)` starts `/probe.wasm spin` as task `id` with
/// `ctr run -d` and the caller's runtime.
pub fn ctr_restart_case(
    containerd: &Containerd,
    run_detached: impl Fn(&str) -> Output,
) -> Result<(), String> {
    let id = "survivor";
    let started = run_detached(id);
    if !started.status.success() {
        return Err(format!("ctr run -d: {started:?}"));
    }
    let state = |want: &str| -> Result<(), String> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let tasks = containerd.ctr(&["task", "ls"]);
            let text = String::from_utf8_lossy(&tasks.stdout).into_owned();
            let listed = text.lines().any(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                fields.first() == Some(&id) && fields.last() == Some(&want)
            });
            if listed {
                return Ok(());
            }
            if Instant::now() > until {
                return Err(format!("{id} not {want}: {text}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let outcome = (|| {
        state("RUNNING")?;
        containerd.restart();
        state("RUNNING")?;
        let killed = containerd.ctr(&["task", "kill", id]);
        if !killed.status.success() {
            return Err(format!("ctr task kill after the restart: {killed:?}"));
        }
        state("STOPPED")?;
        // `ctr task delete` reports a task's non-zero exit code as a warning.
        let deleted = containerd.ctr(&["task", "delete", id]);
        let said = String::from_utf8_lossy(&deleted.stderr).into_owned();
        match said.contains("non-zero exit code 143") {
            true => Ok(()),
            false => Err(format!("after the restart, not 143: {said:?}")),
        }
    })();
    let _ = containerd.ctr(&["task", "kill", "--signal", "SIGKILL", id]);
    let _ = containerd.ctr(&["task", "delete", "--force", id]);
    let _ = containerd.ctr(&["container", "delete", id]);
    outcome
}

impl Drop for Containerd {
    fn drop(&mut self) {
        stop_by_pid(self.daemon.get_mut().unwrap_or_else(|p| p.into_inner()));
        unmount_under(&self.dir);
        // containerd's cgroupsPath is /NAMESPACE/ID.
        remove_cgroup_parent(self.namespace);
    }
}

/// A dockerd started for one test: its own data root, exec root (and so its own managed
/// containerd), socket, pid file and config under a directory, stopped by its PID when
/// dropped. It runs in a network namespace of its own, made for it, where Docker sets
/// up its default bridge, NAT rules and port proxy as it would on a machine: `-p`
/// and `--network host` are real, and nothing of the machine's network configuration
/// changes (the namespace and everything in it go with the daemon; Docker may load the
/// `br_netfilter` kernel module, which stays). [`in_network`](Self::in_network)
/// runs a client there.
#[derive(Debug)]
pub struct Dockerd {
    dir: PathBuf,
    daemon: Child,
}

/// The cgroup parent of a test dockerd's containers (cgroupfs driver).
const DOCKER_CGROUP_PARENT: &str = "wasmux-e2e-docker";

impl Dockerd {
    /// Starts dockerd under `dir` with `runtimes` (name → runtime binary) in its config,
    /// and waits until it answers.
    pub fn start(dir: &Path, runtimes: &[(&str, &Path)]) -> Self {
        let config = dir.join("daemon.json");
        let runtimes: Vec<String> = runtimes
            .iter()
            .map(|(name, path)| format!(r#""{name}": {{"path": "{}"}}"#, path.display()))
            .collect();
        std::fs::write(
            &config,
            format!(r#"{{"runtimes": {{{}}}}}"#, runtimes.join(", ")),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let p = |name: &str| dir.join(name).display().to_string();
        // unshare execs: the daemon's PID is dockerd's. A new namespace's loopback is down.
        let daemon = Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec dockerd \"$@\"",
            ])
            .arg("dockerd")
            .args(["--data-root", &p("docker-data"), "--exec-root", &p("exec")])
            .args([
                "--pidfile",
                &p("dockerd.pid"),
                "--config-file",
                &p("daemon.json"),
            ])
            .args(["-H", &format!("unix://{}", p("docker.sock"))])
            .args(["--storage-driver=vfs"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .args(["--cgroup-parent", DOCKER_CGROUP_PARENT])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut dockerd = Dockerd {
            dir: dir.to_owned(),
            daemon,
        };
        let until = Instant::now() + Duration::from_secs(60);
        while !dockerd.output(&["version"]).status.success() {
            if let Ok(Some(status)) = dockerd.daemon.try_wait() {
                panic!(
                    "dockerd exited ({status}): see {}",
                    dir.join("dockerd.log").display()
                );
            }
            assert!(Instant::now() < until, "dockerd did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        dockerd
    }

    /// Runs `client` on a thread in the daemon's network namespace: where its
    /// published ports (`-p 127.0.0.1:…`) and `--network host` containers listen.
    /// Processes the client starts are there too.
    pub fn in_network<T: Send>(&self, client: impl FnOnce() -> T + Send) -> T {
        use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
        let namespace = format!("/proc/{}/ns/net", self.daemon.id());
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let namespace = std::fs::File::open(&namespace).unwrap();
                    move_into_link_name_space(
                        std::os::fd::AsFd::as_fd(&namespace),
                        Some(LinkNameSpaceType::Network),
                    )
                    .unwrap();
                    client()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// `docker` against this dockerd.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.join("docker.sock").display()),
        )
        // The client's own config (contexts, credentials) stays out of the test.
        .env("DOCKER_CONFIG", self.dir.join("client"))
        .args(args);
        cmd
    }

    /// Runs `docker` to completion, with no stdin.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Builds `images` with `buildah` and loads them as Docker archives (which carry no
    /// OCI annotations: Docker's images are told Wasm by content), then empties
    /// buildah's storage.
    pub fn load(&self, buildah: &Buildah, images: &[Image<'_>]) {
        for image in images {
            buildah.build(image);
            let archive = self.dir.join(format!("{}.tar", image.name));
            let dest = format!("docker-archive:{}:{}:latest", archive.display(), image.name);
            buildah.run(&["push", image.name, &dest]);
            let load = self.output(&["load", "-i", archive.to_str().unwrap()]);
            assert!(
                load.status.success(),
                "docker load {}: {load:?}",
                image.name
            );
        }
        let _ = Command::new("buildah")
            .args(buildah.storage_args())
            .args(["rmi", "--all", "--force"])
            .output();
        unmount_under(&buildah.root);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.output(&["container", "prune", "--force"]);
        let pid = rustix::process::Pid::from_raw(self.daemon.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.daemon.wait();
        unmount_under(&self.dir);
        remove_cgroup_parent(DOCKER_CGROUP_PARENT);
    }
}
