//! Drives the real `wasmux-oci` binary against a private state root, as conmon does:
//! the container's stdio are files, and this process is the subreaper that collects
//! the container process's exit status once `create` has exited.

use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::process::{Pid, WaitOptions};
use serde_json::Value;
use wasmux_conformance::bundle::BundleBuilder;
use wasmux_conformance::guests::core_module;

/// A generous bound on a container's life in these tests (a liveness check, not a timing).
const LIVENESS: Duration = Duration::from_secs(120);

/// A private state root, log file and precompile cache.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    tmp: tempfile::TempDir,
    root: PathBuf,
    log: PathBuf,
}

/// A created container process, a child of this (subreaper) process.
#[derive(Debug)]
pub struct Container {
    pub pid: i32,
    out: PathBuf,
}

/// The `hello` guest's bundle.
pub fn hello_builder() -> BundleBuilder {
    BundleBuilder::with_module(&core_module("hello"), &[]).container_defaults()
}

/// The `probe` guest's bundle with `args`.
pub fn probe_bundle(args: &[&str]) -> BundleBuilder {
    BundleBuilder::with_module(&core_module("probe"), args).container_defaults()
}

/// The engines this build of wasmux-oci contains.
pub fn engines() -> Vec<String> {
    wasmux::ENGINES.iter().map(|e| e.name.to_owned()).collect()
}

fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .expect("becoming a subreaper");
    });
}

impl Runtime {
    pub fn new() -> Self {
        become_subreaper();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let log = tmp.path().join("log.json");
        Runtime {
            inner: Arc::new(Inner { tmp, root, log }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmux-oci"));
        cmd.arg("--root")
            .arg(&self.inner.root)
            .arg("--log")
            .arg(&self.inner.log)
            .args(["--log-format", "json"])
            .args(args)
            .env("WASMUX_CACHE_DIR", self.inner.tmp.path().join("cache"))
            .env_remove("WASMUX_ENGINE")
            .env_remove("WASMUX_OCI_DELEGATE")
            .envs(env.iter().copied());
        cmd
    }

    fn output(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_env(args, &[])
    }

    /// [`ok`](Self::ok) with extra environment.
    pub fn ok_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.output(args, env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args, &[]);
        assert!(!out.status.success(), "{args:?} should have failed");
        String::from_utf8(out.stderr).unwrap()
    }

    /// `state ID`, parsed.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// Writes `builder`'s bundle under this runtime's temp dir.
    pub fn bundle(&self, name: &str, builder: BundleBuilder) -> PathBuf {
        builder.write(&self.inner.tmp.path().join("bundles").join(name))
    }

    /// `create` with the container's stdout and stderr in files; the error's stderr
    /// if it fails.
    pub fn create(&self, id: &str, bundle: &Path) -> Result<Container, String> {
        self.create_with(id, bundle, &[])
    }

    /// [`create`](Self::create) with more `create` flags.
    pub fn create_with(
        &self,
        id: &str,
        bundle: &Path,
        extra: &[&str],
    ) -> Result<Container, String> {
        let (status, stderr, out) = self.run_create(id, bundle, extra, &[]);
        if status != Some(0) {
            return Err(stderr);
        }
        let pid_file = self.inner.tmp.path().join(format!("{id}.pid"));
        let pid = std::fs::read_to_string(pid_file).unwrap().parse().unwrap();
        Ok(Container { pid, out })
    }

    /// `create ID` of `bundle` as a command to start and go on (its output discarded).
    pub fn create_command(&self, id: &str, bundle: &Path) -> Command {
        let bundle = bundle.to_str().unwrap();
        let mut cmd = self.command(&["create", "--bundle", bundle, id], &[]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// `delete --force ID` as a command to start and go on (its output discarded).
    pub fn delete_command(&self, id: &str) -> Command {
        let mut cmd = self.command(&["delete", "--force", id], &[]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Runs a command to completion, whatever it ends with.
    pub fn output_of(&self, args: &[&str]) -> Output {
        self.output(args, &[])
    }

    /// `create`'s exit code and stderr.
    pub fn create_status(&self, id: &str, bundle: &Path) -> (Option<i32>, String) {
        self.create_status_env(id, bundle, &[])
    }

    /// [`create_status`](Self::create_status) with extra environment.
    pub fn create_status_env(
        &self,
        id: &str,
        bundle: &Path,
        env: &[(&str, &str)],
    ) -> (Option<i32>, String) {
        let (status, stderr, _) = self.run_create(id, bundle, &[], env);
        (status, stderr)
    }

    fn run_create(
        &self,
        id: &str,
        bundle: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (Option<i32>, String, PathBuf) {
        let dir = self.inner.tmp.path();
        let out = dir.join(format!("{id}.out"));
        let err = dir.join(format!("{id}.err"));
        let pid_file = dir.join(format!("{id}.pid"));
        let (bundle, pid_file) = (bundle.to_str().unwrap(), pid_file.to_str().unwrap());
        let mut args = vec!["create", "--bundle", bundle, "--pid-file", pid_file];
        args.extend_from_slice(extra);
        args.push(id);
        let status = self
            .command(&args, env)
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .status()
            .unwrap();
        (status.code(), std::fs::read_to_string(err).unwrap(), out)
    }

    /// True when the state root holds no container.
    pub fn is_empty(&self) -> bool {
        std::fs::read_dir(&self.inner.root).map_or(true, |mut d| d.next().is_none())
    }

    /// The `msg` of the log's last `error` line.
    pub fn last_log_error(&self) -> Option<String> {
        let log = std::fs::read_to_string(&self.inner.log).ok()?;
        let lines: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
            .collect();
        lines
            .iter()
            .rev()
            .find(|v| v["level"] == "error")
            .map(|v| v["msg"].as_str().unwrap().to_owned())
    }

    /// A stand-in delegate runtime: records its command line next to itself and, for
    /// `create`, makes the state directory runc would.
    pub fn fake_delegate(&self) -> PathBuf {
        let path = self.inner.tmp.path().join("delegate.sh");
        let script = r#"#!/bin/sh
echo "$@" >> "${0%.sh}.calls"
case " $* " in
  *" create "*) for id; do :; done; mkdir -p "$2/$id" && : > "$2/$id/state.json" ;;
esac
"#;
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Container {
    /// Reaps the container process: its exit code, or 128 + the signal that ended it.
    pub fn wait(&self) -> i32 {
        let pid = Pid::from_raw(self.pid).unwrap();
        let until = Instant::now() + LIVENESS;
        loop {
            if let Some((_, status)) =
                rustix::process::waitpid(Some(pid), WaitOptions::NOHANG).unwrap()
            {
                return status
                    .exit_status()
                    .or_else(|| status.terminating_signal().map(|s| 128 + s))
                    .unwrap();
            }
            assert!(
                Instant::now() < until,
                "container {} did not exit",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What the container wrote to its stdout.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap()
    }
}

/// A listening console socket, as conmon offers one.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: String,
}

impl ConsoleSocket {
    pub fn new(dir: &Path) -> Self {
        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        ConsoleSocket {
            listener,
            path: path.to_str().unwrap().to_owned(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Accepts the runtime's connection and takes the pty master it sends.
    pub fn receive(&self) -> OwnedFd {
        let (stream, _) = self.listener.accept().unwrap();
        let mut name = [0u8; 256];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            &stream,
            &mut [IoSliceMut::new(&mut name)],
            &mut control,
            RecvFlags::empty(),
        )
        .unwrap();
        assert!(
            name[..msg.bytes].starts_with(b"/dev/"),
            "payload is the pty's name"
        );
        control
            .drain()
            .find_map(|m| match m {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .expect("an fd in SCM_RIGHTS")
    }
}

/// Everything the container wrote to its terminal (until the slave side closed).
pub fn read_pty(master: OwnedFd) -> String {
    let mut file = File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Edits a written bundle's config.json (for what the builder has no method for).
pub fn patch_config(bundle: &Path, edit: impl FnOnce(&mut Value)) {
    let path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
}

/// The CPU quota and pids limit in force for process `pid`, read from the cgroups
/// `/proc/PID/cgroup` names (v1 controller mounts, or the unified hierarchy).
pub fn cgroup_limits(pid: i32) -> (Option<String>, Option<String>) {
    let table = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let read = |path: PathBuf| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let mut quota = None;
    let mut pids = None;
    for line in table.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (
            fields.next(),
            fields.next().unwrap_or(""),
            fields.next().unwrap_or(""),
        );
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            let dir = Path::new("/sys/fs/cgroup").join(path);
            if let Some(max) = read(dir.join("cpu.max")) {
                quota = max.split(' ').next().map(str::to_owned);
                pids = read(dir.join("pids.max"));
            }
            continue;
        }
        let names: Vec<&str> = controllers.split(',').collect();
        let mount = || {
            std::fs::read_dir("/sys/fs/cgroup")
                .ok()?
                .filter_map(Result::ok)
                .find(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.split(',').collect::<Vec<_>>() == names && !e.path().is_symlink()
                })
        };
        if names.contains(&"cpu") {
            quota = mount().and_then(|m| read(m.path().join(path).join("cpu.cfs_quota_us")));
        }
        if names.contains(&"pids") {
            pids = mount().and_then(|m| read(m.path().join(path).join("pids.max")));
        }
    }
    (quota, pids)
}
