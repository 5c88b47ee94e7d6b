//! Kubernetes' path without a kubelet: the real containerd with its CRI plugin (runtime
//! handler `wasmux` → `io.containerd.wasmux.v1`, this build's shim), driven through the
//! CRI gRPC API the way kubelet drives it: RunPodSandbox, CreateContainer,
//! StartContainer, ContainerStatus until exited, the container's log file,
//! StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest,
    CreateContainerRequest, ImageSpec, ImageStatusRequest, KeyValue, LinuxContainerConfig,
    LinuxContainerResources, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, ListPodSandboxRequest, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, PodSandboxState, PodSandboxStatusRequest,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopContainerRequest, StopPodSandboxRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};
use wasmux_conformance::e2e::{self, Buildah, Cases, Containerd, ContainerdSetup};

/// The CRI plugin's namespace in containerd.
const NAMESPACE: &str = "k8s.io";
/// The pods' cgroup parent, removed at the end.
const CGROUP_PARENT: &str = "wasmux-cri-test";
const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wasmux-v1");
const PAUSE: &str = "docker.io/library/wasmux-pause:latest";
const GREETING: &str = "Hello from a Wasm container, run by wasmux!";

/// The CRI plugin's configuration: the `wasmux` handler, the locally built sandbox
/// image (no registry is reachable), no AppArmor/SELinux, and an OOM score left as it
/// is (root here lacks CAP_SYS_RESOURCE to lower it). Pods use the host network, so
/// no CNI plugin is needed; its directories are private and empty.
fn cri_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.wasmux]
      runtime_type = "io.containerd.wasmux.v1"
      pod_annotations = ["wasmux.io/*"]
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/net.d"
"#
    )
}

/// A CRI client on containerd's socket, answering synchronously.
struct Cri {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
}

impl Cri {
    fn connect(socket: PathBuf) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let channel = runtime
            .block_on(
                // The URI is required by tonic and unused: the connector dials the socket.
                Endpoint::from_static("http://[::]:0").connect_with_connector(tower::service_fn(
                    move |_: Uri| {
                        let socket = socket.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(socket).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    },
                )),
            )
            .unwrap();
        Cri { runtime, channel }
    }

    fn rt(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
    }

    fn call<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, String> {
        self.runtime
            .block_on(call)
            .map(tonic::Response::into_inner)
            .map_err(|status| format!("{what}: {} {}", status.code(), status.message()))
    }

    /// Waits until the CRI plugin has seen `image` (imported with ctr just before).
    /// RunPodSandbox with the wasmux handler; the pod's ID once it is ready.
    fn run_pod(&self, config: &PodSandboxConfig, containerd_dir: &Path) -> Result<String, String> {
        let request = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: "wasmux".into(),
        };
        let id = self
            .call("RunPodSandbox", self.rt().run_pod_sandbox(request))
            .map_err(|e| format!("{e}\n{}", containerd_log(containerd_dir)))?
            .pod_sandbox_id;
        let status = self.call(
            "PodSandboxStatus",
            self.rt().pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: false,
            }),
        )?;
        match status.status.map(|s| s.state()) {
            Some(PodSandboxState::SandboxReady) => Ok(id),
            other => Err(format!("sandbox state {other:?}")),
        }
    }

    /// StopPodSandbox, RemovePodSandbox.
    fn remove_pod(&self, id: &str) -> Result<(), String> {
        self.call(
            "StopPodSandbox",
            self.rt().stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            }),
        )?;
        self.call(
            "RemovePodSandbox",
            self.rt().remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            }),
        )
        .map(drop)
    }

    fn await_image(&self, image: &str) -> Result<(), String> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let request = ImageStatusRequest {
                image: Some(image_spec(image)),
                verbose: false,
            };
            let status = self.call(
                "ImageStatus",
                ImageServiceClient::new(self.channel.clone()).image_status(request),
            )?;
            if status.image.is_some() {
                return Ok(());
            }
            if Instant::now() > until {
                return Err(format!("the CRI plugin never saw {image}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn image_spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    }
}

/// A pod as kubelet asks for it for a `runtimeClassName: wasmux` Pod named `name` with
/// `hostNetwork: true` and `annotations`.
fn sandbox_config(name: &str, log_dir: &Path, annotations: &[(&str, &str)]) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("9c1c2b0e-wasmux-cri-test-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        annotations: annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        log_directory: log_dir.display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/{CGROUP_PARENT}"),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(pod_namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What kubelet asks for, for the sandbox and each container, of a Pod with
/// `hostNetwork: true` and no `shareProcessNamespace`.
fn pod_namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node.into(),
        pid: NamespaceMode::Container.into(),
        ipc: NamespaceMode::Pod.into(),
        ..Default::default()
    }
}

/// A container of the pod: `image` with `command` (the module first) and `envs`.
fn container(name: &str, image: &str, command: &[&str], envs: &[(&str, &str)]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(image_spec(&format!("docker.io/library/{image}:latest"))),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        envs: envs
            .iter()
            .map(|(key, value)| KeyValue {
                key: (*key).into(),
                value: (*value).into(),
            })
            .collect(),
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(pod_namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod under test and what its containers leave behind.
#[derive(Clone)]
struct Pod<'a> {
    cri: &'a Cri,
    id: String,
    config: PodSandboxConfig,
    log_dir: PathBuf,
    /// containerd's log, quoted when a container fails to start.
    containerd_dir: PathBuf,
}

/// How a container ended: exit code and its stdout lines from the CRI log.
struct Ended {
    exit_code: i32,
    stdout: String,
}

impl Pod<'_> {
    fn create(&self, config: ContainerConfig) -> Result<String, String> {
        let request = CreateContainerRequest {
            pod_sandbox_id: self.id.clone(),
            config: Some(config),
            sandbox_config: Some(self.config.clone()),
        };
        Ok(self
            .cri
            .call("CreateContainer", self.cri.rt().create_container(request))?
            .container_id)
    }

    fn start(&self, id: &str) -> Result<(), String> {
        let request = StartContainerRequest {
            container_id: id.into(),
        };
        self.cri
            .call("StartContainer", self.cri.rt().start_container(request))
            .map(drop)
            .map_err(|e| format!("{e}\n{}", containerd_log(&self.containerd_dir)))
    }

    /// Polls ContainerStatus until the container has exited (60 s at most).
    fn wait(&self, id: &str) -> Result<i32, String> {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let request = ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            };
            let status = self
                .cri
                .call("ContainerStatus", self.cri.rt().container_status(request))?
                .status
                .ok_or("ContainerStatus without a status")?;
            if status.state() == ContainerState::ContainerExited {
                return Ok(status.exit_code);
            }
            if Instant::now() > until {
                return Err(format!("{id} still {:?} after 60 s", status.state()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The stdout lines of the container's CRI log (`TIME STREAM TAG TEXT`).
    fn stdout(&self, name: &str) -> String {
        let log =
            std::fs::read_to_string(self.log_dir.join(format!("{name}.log"))).unwrap_or_default();
        log.lines()
            .filter_map(|line| {
                let mut fields = line.splitn(4, ' ');
                let (_time, stream, _tag) = (fields.next()?, fields.next()?, fields.next()?);
                (stream == "stdout").then(|| fields.next().unwrap_or("").to_owned())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// As kubelet deleting a pod: SIGTERM, then SIGKILL after the grace period; the
    /// container's exit code.
    fn stop(&self, id: &str) -> Result<i32, String> {
        let request = StopContainerRequest {
            container_id: id.into(),
            timeout: 30,
        };
        self.cri
            .call("StopContainer", self.cri.rt().stop_container(request))?;
        self.wait(id)
    }

    fn remove(&self, id: &str) -> Result<(), String> {
        let request = RemoveContainerRequest {
            container_id: id.into(),
        };
        self.cri
            .call("RemoveContainer", self.cri.rt().remove_container(request))
            .map(drop)
    }

    /// Create, start, wait, read the log, remove: one run of `config`.
    fn run(&self, config: ContainerConfig) -> Result<Ended, String> {
        let name = config.metadata.as_ref().unwrap().name.clone();
        let id = self.create(config)?;
        self.start(&id)?;
        let exit_code = self.wait(&id)?;
        // The log is complete once containerd has drained the container's pipes,
        // which may trail the exit by a little.
        let mut stdout = self.stdout(&name);
        for _ in 0..20 {
            if !stdout.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            stdout = self.stdout(&name);
        }
        self.remove(&id)?;
        Ok(Ended { exit_code, stdout })
    }

    /// The process env of the spec containerd made for the container: CRI's verbose
    /// ContainerStatus shows it (`info` → `runtimeSpec`).
    fn spec_env(&self, id: &str) -> Result<Vec<String>, String> {
        let request = ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        let info = self
            .cri
            .call("ContainerStatus", self.cri.rt().container_status(request))?
            .info;
        let info: serde_json::Value =
            serde_json::from_str(info.get("info").ok_or("no verbose info")?)
                .map_err(|e| e.to_string())?;
        Ok(info["runtimeSpec"]["process"]["env"]
            .as_array()
            .ok_or("the spec has no process.env")?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }
}

fn expect_exit(ended: &Ended, code: i32, stdout: Option<&str>) -> Result<(), String> {
    if ended.exit_code != code {
        return Err(format!(
            "exit {}, want {code}; stdout {:?}",
            ended.exit_code, ended.stdout
        ));
    }
    match stdout {
        Some(want) if ended.stdout != want => {
            Err(format!("stdout {:?}, want {want:?}", ended.stdout))
        }
        _ => Ok(()),
    }
}

#[test]
fn kubernetes_cri_runs_wasm_pods_through_the_wasmux_handler() {
    if !e2e::tools_available("cri", &["containerd", "ctr", "buildah", "gcc"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let buildah = Buildah::new(tmp.path().join("storage"), tmp.path().join("runroot"));
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(SHIM, bin.join("containerd-shim-wasmux-v1")).unwrap();
    let setup = ContainerdSetup {
        path_prefix: Some(&bin),
        env: vec![("WASMUX_CACHE_DIR", tmp.path().join("modules").into())],
        cri: Some(cri_config(tmp.path())),
    };
    let containerd = Containerd::start(tmp.path(), NAMESPACE, setup);
    let mut images = e2e::standard_images(tmp.path());
    images.push(e2e::pause_image(tmp.path()));
    containerd.import(&buildah, &images);
    let cri = Cri::connect(containerd.grpc_socket());
    let log_dir = tmp.path().join("pod-logs");
    std::fs::create_dir_all(&log_dir).unwrap();

    let mut cases = Cases::default();
    let mut pod = None;
    cases.case(
        "RunPodSandbox with handler wasmux: the native pause runs",
        || {
            for image in [PAUSE, "docker.io/library/wasm-probe:latest"] {
                cri.await_image(image)?;
            }
            let config = sandbox_config("wasm-pod", &log_dir, &[]);
            let id = cri.run_pod(&config, tmp.path())?;
            pod = Some(Pod {
                cri: &cri,
                id,
                config,
                log_dir: log_dir.clone(),
                containerd_dir: tmp.path().to_owned(),
            });
            Ok(())
        },
    );
    let Some(pod) = pod else {
        cases.finish("kubernetes_cri_runs_wasm_pods_through_the_wasmux_handler");
        return;
    };
    let probe = |name: &str, args: &[&str]| {
        let mut command = vec!["/probe.wasm"];
        command.extend_from_slice(args);
        container(name, "wasm-probe", &command, &[])
    };
    cases.case("hello: its output in the container's CRI log", || {
        let ended = pod.run(container("hello", "wasm-hello", &[], &[]))?;
        expect_exit(&ended, 0, Some(GREETING))
    });
    cases.case("exit 7", || {
        expect_exit(&pod.run(probe("exit7", &["exit", "7"]))?, 7, None)
    });
    cases.case("trap is 134", || {
        expect_exit(
            &pod.run(probe("trap", &["trap", "unreachable"]))?,
            134,
            None,
        )
    });
    cases.case("memory limit 32 MiB, 128 MiB wanted: 137", || {
        let mut config = probe("oom", &["alloc", "128"]);
        if let Some(linux) = config.linux.as_mut() {
            linux.resources = Some(LinuxContainerResources {
                memory_limit_in_bytes: 32 << 20,
                ..Default::default()
            });
        }
        expect_exit(&pod.run(config)?, 137, None)
    });
    cases.case("argv verbatim", || {
        let ended = pod.run(probe("args", &["args", "a b", "--x"]))?;
        expect_exit(
            &ended,
            0,
            Some("0:\"/probe.wasm\"\n1:\"args\"\n2:\"a b\"\n3:\"--x\""),
        )
    });
    cases.case("env is exactly the spec containerd wrote", || {
        let config = container("env", "wasm-probe", &["/probe.wasm", "env"], &[("K", "V")]);
        let id = pod.create(config)?;
        let mut want: Vec<String> = pod
            .spec_env(&id)?
            .iter()
            .map(|var| match var.split_once('=') {
                Some((k, v)) => format!("{k}={v:?}"),
                None => format!("{var}=\"\""),
            })
            .collect();
        want.sort();
        pod.start(&id)?;
        let exit_code = pod.wait(&id)?;
        std::thread::sleep(Duration::from_millis(200));
        let stdout = pod.stdout("env");
        pod.remove(&id)?;
        expect_exit(&Ended { exit_code, stdout }, 0, Some(&want.join("\n")))?;
        want.iter()
            .any(|line| line == "K=\"V\"")
            .then_some(())
            .ok_or(format!("K=V missing from the spec's env: {want:?}"))
    });
    cases.case(
        "a wasi:http service in the pod answers the node; StopContainer drains it: 143",
        || {
            let service = std::cell::RefCell::new(None);
            let result = e2e::http_case(
                |address| {
                    cri.await_image("docker.io/library/wasm-http:latest")?;
                    // The pod shares the node's network; the address from the
                    // guest's environment (a pod annotation would do as well).
                    let config = container(
                        "service",
                        "wasm-http",
                        &[],
                        &[("WASMUX_HTTP_LISTEN", address)],
                    );
                    let id = pod.create(config)?;
                    pod.start(&id)?;
                    *service.borrow_mut() = Some(id);
                    Ok(())
                },
                || {
                    let id = service
                        .borrow()
                        .clone()
                        .ok_or("the service was not started")?;
                    pod.stop(&id)
                },
            );
            if let Some(id) = service.into_inner() {
                pod.remove(&id)?;
            }
            result
        },
    );
    cases.case("StopContainer ends a running guest with 143", || {
        let id = pod.create(probe("spin", &["spin"]))?;
        pod.start(&id)?;
        let exit_code = pod.stop(&id)?;
        pod.remove(&id)?;
        match exit_code {
            143 => Ok(()),
            other => Err(format!("exit {other}, want 143 (SIGTERM)")),
        }
    });
    cases.case(
        "pod annotations (pod_annotations = wasmux.io/*): the timeout ends a guest, 137; the engine options compile its code",
        || {
            let annotations = [
                ("wasmux.io/timeout", "1"),
                ("wasmux.io/engine-options", "tier=baseline"),
            ];
            let config = sandbox_config("annotated-pod", &log_dir, &annotations);
            let annotated = Pod {
                id: cri.run_pod(&config, tmp.path())?,
                config,
                ..pod.clone()
            };
            let ended = annotated.run(probe("deadline", &["spin"]));
            cri.remove_pod(&annotated.id)?;
            expect_exit(&ended?, 137, None)?;
            // The node cache's entry says it is Winch's code (tier=baseline), which the
            // helper outside the container compiled with the pod's options.
            e2e::cache_holds_code_of(&tmp.path().join("modules"), "winch-")
        },
    );
    cases.case("StopPodSandbox, RemovePodSandbox: no pod left", || {
        cri.remove_pod(&pod.id)?;
        let left = cri
            .call(
                "ListPodSandbox",
                cri.rt().list_pod_sandbox(ListPodSandboxRequest::default()),
            )?
            .items;
        left.is_empty()
            .then_some(())
            .ok_or(format!("{} pods left", left.len()))
    });
    drop(containerd);
    e2e::remove_cgroup_parent(CGROUP_PARENT);
    cases.finish("kubernetes_cri_runs_wasm_pods_through_the_wasmux_handler");
}

/// The end of containerd's log, for a failure message.
fn containerd_log(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
