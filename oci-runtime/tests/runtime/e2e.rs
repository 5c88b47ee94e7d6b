//! What the podman and containerd tests share: finding the tools, the wasmux-oci
//! wrapper they are configured with, images built with buildah, named cases, and
//! leaving the machine as it was (private state only, mounts undone).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wasmux_conformance::guests::core_module;

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

/// A script that runs this build's wasmux-oci with a private cache (and state root,
/// unless the caller passes `--root` itself), the way a user configures a runtime
/// whose flags the caller does not let them set.
pub fn wrapper(dir: &Path, own_root: bool) -> PathBuf {
    let path = dir.join("wasmux-oci");
    let root = if own_root {
        format!("--root {}", wrapper_state(dir).display())
    } else {
        String::new()
    };
    let script = format!(
        "#!/bin/sh\nWASMUX_CACHE_DIR={cache} exec {bin} {root} \"$@\"\n",
        cache = dir.join("cache").display(),
        bin = env!("CARGO_BIN_EXE_wasmux-oci"),
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The state root the wrapper uses.
pub fn wrapper_state(dir: &Path) -> PathBuf {
    dir.join("wasmux-state")
}

/// buildah with private storage under `dir`.
pub struct Buildah {
    root: PathBuf,
    runroot: PathBuf,
}

/// An image to build: files from the host, entrypoint, annotations.
pub struct Image<'a> {
    pub name: &'a str,
    pub files: Vec<(PathBuf, &'a str)>,
    pub entrypoint: &'a str,
    pub annotations: &'a [(&'a str, &'a str)],
}

impl Buildah {
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

/// The images both tests use: Wasm guests (`compat`) and a static native hello.
pub fn standard_images(dir: &Path) -> Vec<Image<'static>> {
    let native = dir.join("native-hello");
    let status = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&native)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/hello.c"))
        .status()
        .unwrap();
    assert!(status.success(), "gcc -static failed");
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

/// Named checks run in order; the test fails at the end listing every failed one.
#[derive(Default)]
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

/// The runtime root exists (so the runtime really used it) and holds no container.
pub fn holds_nothing(root: &Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(root).map_err(|e| format!("runtime root {}: {e}", root.display()))?;
    let left: Vec<_> = entries.filter_map(|e| Some(e.ok()?.file_name())).collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("left under {}: {left:?}", root.display()))
    }
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
