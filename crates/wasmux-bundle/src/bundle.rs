//! `Bundle`: an OCI bundle on disk, loaded with oci-spec and mapped to a `RunSpec` (docs/oci-to-wasi.md).

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};
use tracing::{debug, warn};
use wasmux_core::spec::open_mount_of;
use wasmux_core::{EngineOptions, Error, Limits, Preopen, Requested, Result, RunSpec, WasmBinary};

use crate::annotations;
use crate::detect::{HandlerMode, HandlerRequest, Sniffed};
use crate::entrypoint;
use crate::scratch::Scratch;

/// Mount types a Wasm guest has no use for; ignored rather than refused, since every
/// runtime adds them to every container.
const IGNORED_MOUNT_TYPES: &[&str] = &["proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"];

/// A loaded, validated OCI bundle: `config.json` plus its rootfs.
#[derive(Debug, Clone)]
pub struct Bundle {
    dir: PathBuf,
    spec: Spec,
    rootfs: PathBuf,
    request: HandlerRequest,
    options: EngineOptions,
    scratch_root: Option<PathBuf>,
}

impl Bundle {
    /// Reads `dir/config.json`. Fails on a missing or invalid config, a missing root, or
    /// unknown Wasm annotations; it does not yet look at the entrypoint.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        let config = dir.join("config.json");
        let invalid = |message: String| Error::InvalidConfig {
            path: config.clone(),
            message,
        };
        // serde_json directly rather than `Spec::load`, whose errors say only "serde failed".
        let file = std::fs::File::open(&config).map_err(|e| invalid(e.to_string()))?;
        let spec: Spec = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|e| invalid(e.to_string()))?;
        Self::from_spec(dir, spec)
    }

    /// Builds a bundle from an already parsed spec; relative paths resolve against `dir`.
    pub fn from_spec(dir: PathBuf, spec: Spec) -> Result<Self> {
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::InvalidBundle("config has no root".into()))?;
        let rootfs = dir.join(root.path());
        if !rootfs.is_dir() {
            return Err(Error::InvalidBundle(format!(
                "root.path {} is not a directory",
                rootfs.display()
            )));
        }
        let request = HandlerRequest::from_annotations(spec.annotations().as_ref())?;
        let options = annotations::engine_options(spec.annotations().as_ref())?;
        Ok(Bundle {
            dir,
            spec,
            rootfs,
            request,
            options,
            scratch_root: None,
        })
    }

    /// The parsed OCI runtime spec.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The rootfs directory on the host.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// Makes the scratch directories of the specs this bundle maps (its tmpfs mounts
    /// and `/dev`) inside `dir` (which must exist) instead of the system's temp
    /// directory. A runtime points this into a container's own state directory, so
    /// that removing the container removes them even when the process that owned the
    /// spec was killed before it could clean up.
    pub fn set_scratch_root(&mut self, dir: impl Into<PathBuf>) {
        self.scratch_root = Some(dir.into());
    }

    /// The engine named by `run.oci.handler`, if the bundle asks for one.
    pub fn requested_engine(&self) -> Option<&str> {
        self.request.engine.as_deref()
    }

    /// What the bundle asks of its engine: `run.oci.handler`'s engine and the
    /// [`ENGINE_OPTIONS_ANNOTATION`](crate::ENGINE_OPTIONS_ANNOTATION)'s options.
    pub fn requested(&self) -> Requested {
        Requested {
            engine: self.request.engine.clone(),
            options: self.options.clone(),
        }
    }

    /// Maps the whole spec to a [`RunSpec`]: reads and classifies the entrypoint, builds
    /// the mount table, the environment and the limits. Under `compat-smart` a non-Wasm
    /// entrypoint is [`Error::NotAWasmWorkload`], for the caller to run it as a Linux
    /// container.
    pub fn run_spec(&self) -> Result<RunSpec> {
        let process = self
            .spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::InvalidBundle("config has no process".into()))?;
        let args = process.args().clone().unwrap_or_default();
        check_args(&args)?;
        let Some(arg0) = args.first() else {
            return Err(Error::InvalidBundle("process.args is empty".into()));
        };
        let cwd = guest_path_string(process.cwd(), "process.cwd")?;
        let env = parse_env(process.env().as_deref().unwrap_or_default())?;
        let MountTable { mounts, tmpfs } = self.mount_table()?;

        let (module_path, entry) = split_entry(arg0);
        let wasm = self.read_entrypoint(&mounts, &cwd, module_path)?;
        let mut spec = RunSpec::new(wasm);
        spec.entry = entry.map(str::to_owned);
        spec.args = args;
        spec.env = env;
        spec.cwd = cwd;
        spec.mounts = mounts;
        let mut scratch = Scratch::new(self.scratch_root.clone());
        for (guest, read_only) in tmpfs {
            scratch.add(&mut spec, &guest, read_only)?;
        }
        scratch.provide_default_devices(&mut spec)?;
        scratch.hold_in(&mut spec);
        // The working directory must exist now, not only when the run starts: `create`
        // fails on it, as runc's does.
        spec.open_guest_dir(&spec.cwd).map_err(|e| match e {
            Error::Io { source, .. } => Error::InvalidBundle(format!(
                "process.cwd {} cannot be opened in the guest: {source}",
                spec.cwd
            )),
            Error::InvalidBundle(message) => {
                Error::InvalidBundle(format!("process.cwd: {message}"))
            }
            other => other,
        })?;
        let annotated = self.spec.annotations().as_ref();
        spec.limits = Limits {
            memory_bytes: self.memory_limit(),
            timeout: annotations::timeout(annotated)?,
            cpu_time: annotations::cpu_time(annotated)?,
        };
        Ok(spec)
    }

    /// Reads the module named by `process.args[0]` (relative to `cwd`) through the
    /// mount table and classifies it according to the handler mode.
    fn read_entrypoint(&self, mounts: &[Preopen], cwd: &str, path: &str) -> Result<WasmBinary> {
        let guest = entrypoint::guest_path(cwd, path);
        let (root, rest) = open_mount_of(mounts, &guest)
            .map_err(|e| entrypoint::not_found(&guest, e.to_string()))?;
        match (
            entrypoint::read(&guest, &root, Path::new(rest))?,
            self.request.mode,
        ) {
            (Sniffed::Wasm(wasm), _) => Ok(wasm),
            (Sniffed::NotWasm(reason), HandlerMode::Strict) => Err(Error::NotWasm {
                path: guest,
                reason,
            }),
            (Sniffed::NotWasm(reason), HandlerMode::Smart) => Err(Error::NotAWasmWorkload {
                reason: format!("{guest} is {reason}"),
            }),
        }
    }

    /// The root as `/`, then every bind mount as a preopen; tmpfs mounts are returned
    /// separately to become scratch directories.
    fn mount_table(&self) -> Result<MountTable> {
        let root_ro = self
            .spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false);
        let mut preopens = vec![Preopen {
            host: self.rootfs.clone(),
            guest: "/".into(),
            read_only: root_ro,
        }];
        let mut tmpfs = Vec::new();
        for mount in self.spec.mounts().as_deref().unwrap_or_default() {
            let destination = guest_path_string(mount.destination(), "mount destination")?;
            let options = mount.options().as_deref().unwrap_or_default();
            let read_only = is_read_only(options);
            let typ = mount.typ().as_deref().unwrap_or("");
            if typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind") {
                if let Some(preopen) = self.bind_mount(mount, destination, read_only)? {
                    preopens.push(preopen);
                }
            } else if typ == "tmpfs" {
                tmpfs.push((destination, read_only));
            } else if IGNORED_MOUNT_TYPES.contains(&typ) {
                debug!(%destination, typ, "ignoring a mount a Wasm guest cannot use");
            } else {
                warn!(%destination, typ, "ignoring a mount type wasmux does not map to WASI");
            }
        }
        Ok(MountTable {
            mounts: preopens,
            tmpfs,
        })
    }

    fn bind_mount(
        &self,
        mount: &Mount,
        destination: String,
        read_only: bool,
    ) -> Result<Option<Preopen>> {
        let source = mount.source().as_ref().ok_or_else(|| {
            Error::InvalidBundle(format!("bind mount at {destination} has no source"))
        })?;
        let host = self.dir.join(source);
        let meta = std::fs::metadata(&host).map_err(|_| Error::MountSourceMissing {
            source_path: host.clone(),
            destination: destination.clone(),
        })?;
        if !meta.is_dir() {
            // WASI preopens are directories; runtimes bind files such as /etc/hosts into
            // every container, so refusing them would refuse every container.
            // Every runtime binds files such as /etc/hosts: expected, so not a warning.
            debug!(%destination, "ignoring a bind mount of a file: WASI can only preopen directories");
            return Ok(None);
        }
        Ok(Some(Preopen {
            host,
            guest: destination,
            read_only,
        }))
    }

    fn memory_limit(&self) -> Option<u64> {
        let limit = self
            .spec
            .linux()
            .as_ref()?
            .resources()
            .as_ref()?
            .memory()
            .as_ref()?
            .limit()?;
        u64::try_from(limit).ok().filter(|&l| l > 0)
    }
}

/// The guest's mounts before the module is read: host directories, and tmpfs mount
/// points (guest path, read-only) still to be created.
struct MountTable {
    mounts: Vec<Preopen>,
    tmpfs: Vec<(String, bool)>,
}

/// `path#func` selects an exported function; the part after the last `#` is the name.
pub(crate) fn split_entry(arg0: &str) -> (&str, Option<&str>) {
    match arg0.rsplit_once('#') {
        Some((path, func)) if !func.is_empty() && !func.contains('/') => (path, Some(func)),
        _ => (arg0, None),
    }
}

/// Refuses arguments holding a NUL byte: the guest's argv is NUL-terminated strings, so
/// one would be cut short there without a word.
pub(crate) fn check_args(args: &[String]) -> Result<()> {
    match args.iter().position(|a| a.contains('\0')) {
        Some(i) => Err(Error::InvalidBundle(format!(
            "process.args[{i}] contains a NUL byte"
        ))),
        None => Ok(()),
    }
}

/// Parses `KEY=VALUE` entries as OCI's `process.env` and CLIs give them: split at the
/// first `=` (the value may contain more); an entry without one, or with a NUL byte
/// (which the guest's C strings would silently cut), is an error.
pub fn parse_env(entries: &[String]) -> Result<Vec<(String, String)>> {
    entries
        .iter()
        .map(|entry| match entry.split_once('=') {
            _ if entry.contains('\0') => Err(Error::InvalidEnv {
                entry: entry.clone(),
            }),
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(Error::InvalidEnv {
                entry: entry.clone(),
            }),
        })
        .collect()
}

/// The last of `ro`/`rw` wins, as with mount(8).
fn is_read_only(options: &[String]) -> bool {
    options
        .iter()
        .rev()
        .find_map(|o| match o.as_str() {
            "ro" => Some(true),
            "rw" => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

/// A guest path as the absolute, normalised UTF-8 string WASI wants.
fn guest_path_string(path: &Path, what: &str) -> Result<String> {
    if !path.is_absolute() {
        return Err(Error::InvalidBundle(format!(
            "{what} {} must be an absolute path",
            path.display()
        )));
    }
    let mut out = String::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => {
                let name = name.to_str().ok_or_else(|| {
                    Error::InvalidBundle(format!("{what} {} is not UTF-8", path.display()))
                })?;
                out.push('/');
                out.push_str(name);
            }
            Component::ParentDir => {
                return Err(Error::InvalidBundle(format!(
                    "{what} {} must not contain ..",
                    path.display()
                )));
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
