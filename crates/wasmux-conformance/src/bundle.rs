//! `BundleBuilder`: writes a real OCI bundle (config.json through oci-spec's typed
//! builders, plus a rootfs) that any runtime, or `wasmux run`, can use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Linux, LinuxBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder, Mount, MountBuilder,
    ProcessBuilder, RootBuilder, SpecBuilder, get_default_mounts,
};

/// Builds a bundle in a directory of its own; see [`BundleBuilder::write`].
#[derive(Debug, Clone, Default)]
pub struct BundleBuilder {
    files: Vec<(String, Vec<u8>)>,
    args: Vec<String>,
    env: Vec<String>,
    cwd: Option<String>,
    root_readonly: bool,
    mounts: Vec<Mount>,
    annotations: HashMap<String, String>,
    memory_limit: Option<i64>,
    container: bool,
}

impl BundleBuilder {
    /// A bundle whose rootfs holds `module` at `/<name>` and whose argv is `[/<name>, args...]`.
    pub fn with_module(module: &Path, args: &[&str]) -> Self {
        let name = module
            .file_name()
            .map_or("module.wasm".into(), |n| n.to_string_lossy().into_owned());
        let bytes = std::fs::read(module)
            .unwrap_or_else(|e| panic!("reading guest {}: {e}", module.display()));
        let guest = format!("/{name}");
        BundleBuilder::default()
            .file(&guest, bytes)
            .args(std::iter::once(guest.as_str()).chain(args.iter().copied()))
    }

    /// Puts a file into the rootfs at the guest path `path`.
    pub fn file(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_owned(), bytes.into()));
        self
    }

    /// Sets `process.args` verbatim.
    pub fn args<'a>(mut self, args: impl IntoIterator<Item = &'a str>) -> Self {
        self.args = args.into_iter().map(str::to_owned).collect();
        self
    }

    /// Sets `process.env` entries verbatim (`KEY=VALUE`).
    pub fn env(mut self, env: &[&str]) -> Self {
        self.env = env.iter().map(|e| (*e).to_owned()).collect();
        self
    }

    /// Sets `process.cwd` (default `/`).
    pub fn cwd(mut self, cwd: &str) -> Self {
        self.cwd = Some(cwd.to_owned());
        self
    }

    /// Sets `root.readonly`.
    pub fn root_readonly(mut self, readonly: bool) -> Self {
        self.root_readonly = readonly;
        self
    }

    /// Adds a bind mount of host `source` at `destination`.
    pub fn bind(mut self, source: &Path, destination: &str, read_only: bool) -> Self {
        let mut options = vec!["rbind".to_owned()];
        options.push(if read_only { "ro" } else { "rw" }.to_owned());
        self.mounts.push(
            MountBuilder::default()
                .destination(destination)
                .typ("bind")
                .source(source)
                .options(options)
                .build()
                .unwrap_or_else(|e| panic!("bind mount {destination}: {e}")),
        );
        self
    }

    /// Adds a tmpfs mount at `destination`.
    pub fn tmpfs(mut self, destination: &str) -> Self {
        self.mounts.push(
            MountBuilder::default()
                .destination(destination)
                .typ("tmpfs")
                .source("tmpfs")
                .build()
                .unwrap_or_else(|e| panic!("tmpfs mount {destination}: {e}")),
        );
        self
    }

    /// Adds an annotation (for example `module.wasm.image/variant`).
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Makes the spec a container runtime's, as `runc spec` writes it: the default
    /// namespaces, masked and read-only paths, and `/proc`, `/dev`, `/dev/pts`,
    /// `/dev/shm`, `/dev/mqueue`, `/sys` and its cgroups mounted before the bundle's own.
    pub fn container_defaults(mut self) -> Self {
        self.container = true;
        self
    }

    /// Sets `linux.resources.memory.limit` in bytes.
    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Writes `config.json` and `rootfs/` into `dir` (created if needed) and returns it.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs)
            .unwrap_or_else(|e| panic!("creating {}: {e}", rootfs.display()));
        for (path, bytes) in &self.files {
            let host = rootfs.join(path.trim_start_matches('/'));
            if let Some(parent) = host.parent() {
                std::fs::create_dir_all(parent)
                    .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
            }
            std::fs::write(&host, bytes)
                .unwrap_or_else(|e| panic!("writing {}: {e}", host.display()));
        }
        let process = ProcessBuilder::default()
            .args(self.args.clone())
            .env(self.env.clone())
            .cwd(self.cwd.as_deref().unwrap_or("/"))
            .build()
            .unwrap_or_else(|e| panic!("process: {e}"));
        let root = RootBuilder::default()
            .path("rootfs")
            .readonly(self.root_readonly)
            .build()
            .unwrap_or_else(|e| panic!("root: {e}"));
        let mut mounts = if self.container {
            get_default_mounts()
        } else {
            Vec::new()
        };
        mounts.extend(self.mounts.iter().cloned());
        let mut spec = SpecBuilder::default()
            .version("1.0.2")
            .root(root)
            .process(process)
            .mounts(mounts)
            .annotations(self.annotations.clone());
        let mut linux = self.container.then(Linux::default);
        if let Some(limit) = self.memory_limit {
            let memory = LinuxMemoryBuilder::default()
                .limit(limit)
                .build()
                .unwrap_or_else(|e| panic!("memory: {e}"));
            let resources = LinuxResourcesBuilder::default()
                .memory(memory)
                .build()
                .unwrap_or_else(|e| panic!("resources: {e}"));
            let mut with_limit = linux.take().unwrap_or_else(|| {
                LinuxBuilder::default()
                    .build()
                    .unwrap_or_else(|e| panic!("linux: {e}"))
            });
            with_limit.set_resources(Some(resources));
            linux = Some(with_limit);
        }
        if let Some(linux) = linux {
            spec = spec.linux(linux);
        }
        let spec = spec.build().unwrap_or_else(|e| panic!("spec: {e}"));
        let config = dir.join("config.json");
        spec.save(&config)
            .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        dir.to_owned()
    }
}
