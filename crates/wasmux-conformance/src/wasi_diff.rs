//! The WASI preview1 differential suite: the `wasi_diff` guest runs each scenario on an
//! engine against a fresh copy of one fixture tree; its transcript (every call with its
//! errno or result), its exit status and the tree it leaves behind must equal
//! wasmtime-wasi's, the oracle ([`crate::reference`]). A difference is a failure unless [`ACCEPTED`] lists it with
//! its reason.

use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use wasmux::{DynEngine, ExitStatus, Preopen, RunControl, RunSpec, StdioStream};

use crate::workload::core_module_binary;

/// Every scenario of the guest, in the order they are reported.
pub const SCENARIOS: &[&str] = &[
    "preopens",
    "stdio",
    "open",
    "readwrite",
    "append",
    "dirs",
    "readdir",
    "rename",
    "symlinks",
    "links",
    "times",
    "escape",
    "readonly",
    "fds",
    "misc",
    "std",
    "flags",
];

/// A difference from wasmtime that is accepted, and why. Kept nearly empty: an engine
/// that can be made to agree, must.
pub struct Accepted {
    /// The engine.
    pub engine: &'static str,
    /// The scenario.
    pub scenario: &'static str,
    /// The call whose line may differ (the text before ` = `).
    pub call: &'static str,
    /// Why the difference stays.
    pub reason: &'static str,
}

/// The accepted differences (docs/conformance.md shows this table).
pub const ACCEPTED: &[Accepted] = &[];

/// What one run of a scenario produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// How the guest ended.
    pub status: String,
    /// The transcript, one call per line.
    pub transcript: String,
    /// The fixture tree afterwards, one entry per line.
    pub tree: String,
}

/// Who runs a scenario: an engine of wasmux, or the oracle.
#[derive(Clone, Copy)]
pub enum Subject<'a> {
    /// A wasmux engine, with wasmux's WASI.
    Engine(&'a dyn DynEngine),
    /// wasmtime-wasi's preview1, the reference ([`crate::reference`]).
    Reference,
}

/// Runs `scenario` on `subject` against a fresh fixture in `dir`.
pub fn observe(subject: Subject<'_>, scenario: &str, dir: &Path) -> Result<Observed, String> {
    let _ = std::fs::remove_dir_all(dir);
    let root = dir.join("root");
    let ro = dir.join("ro");
    write_fixture(&root, &ro).map_err(|e| format!("writing the fixture: {e}"))?;
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    let create = |p: &Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut spec = RunSpec::new(core_module_binary("wasi_diff"));
    spec.args = vec!["wasi_diff".into(), scenario.into()];
    spec.env = vec![("DIFF".into(), "1".into())];
    spec.mounts = vec![
        Preopen {
            host: root.clone(),
            guest: "/".into(),
            read_only: false,
        },
        Preopen {
            host: ro.clone(),
            guest: "/ro".into(),
            read_only: true,
        },
    ];
    let status = match subject {
        Subject::Engine(engine) => {
            spec.stdio.stdin = StdioStream::Null;
            spec.stdio.stdout = StdioStream::from(create(&stdout_path)?);
            spec.stdio.stderr = StdioStream::from(create(&stderr_path)?);
            match wasmux::run_once(engine, spec, &RunControl::new()) {
                Ok(ExitStatus::Exited(code)) => format!("exit {code}"),
                Ok(other) => other.to_string(),
                Err(e) => format!("error: {e}"),
            }
        }
        Subject::Reference => {
            crate::reference::run(&spec, create(&stdout_path)?, create(&stderr_path)?)
                .unwrap_or_else(|e| format!("error: {e}"))
        }
    };
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut transcript = read(&stdout_path)?;
    let stderr = read(&stderr_path)?;
    if !stderr.is_empty() {
        let _ = write!(transcript, "(stderr) {stderr}");
    }
    let mut tree = listing(&root).map_err(|e| format!("listing the tree: {e}"))?;
    tree.push_str(&listing(&ro).map_err(|e| format!("listing the ro tree: {e}"))?);
    Ok(Observed {
        status,
        transcript,
        tree,
    })
}

/// Compares an engine's run with the oracle's: `Err` lists every unaccepted difference.
pub fn compare(
    engine: &str,
    scenario: &str,
    oracle: &Observed,
    got: &Observed,
) -> Result<(), String> {
    let mut diffs = String::new();
    if oracle.status != got.status {
        let _ = writeln!(
            diffs,
            "status: wasmtime {:?}, {engine} {:?}",
            oracle.status, got.status
        );
    }
    let accepted = |line: &str| {
        let call = line.split(" = ").next().unwrap_or(line);
        ACCEPTED
            .iter()
            .any(|a| a.engine == engine && a.scenario == scenario && a.call == call)
    };
    let (want, have): (Vec<&str>, Vec<&str>) = (
        oracle.transcript.lines().collect(),
        got.transcript.lines().collect(),
    );
    for i in 0..want.len().max(have.len()) {
        let (w, h) = (
            want.get(i).copied().unwrap_or("(none)"),
            have.get(i).copied().unwrap_or("(none)"),
        );
        if w != h && !(accepted(w) && accepted(h)) {
            let _ = writeln!(diffs, "  reference: {w}\n  {engine:>9}: {h}");
        }
    }
    if oracle.tree != got.tree {
        let _ = writeln!(
            diffs,
            "tree left behind differs:\n--- reference\n{}--- {engine}\n{}",
            oracle.tree, got.tree
        );
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{scenario} on {engine} differs from the reference (wasmtime-wasi):\n{diffs}"
        ))
    }
}

/// The fixture: files, directories, a large directory, and symlinks inside, dangling,
/// looping and pointing out (absolute and by `..`); `ro` is mounted read-only.
fn write_fixture(root: &Path, ro: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("dir/sub"))?;
    std::fs::create_dir_all(root.join("emptydir"))?;
    std::fs::create_dir_all(root.join("big"))?;
    std::fs::write(root.join("file.txt"), "hello, world\n")?;
    std::fs::write(root.join("empty.txt"), "")?;
    std::fs::write(root.join("dir/inner.txt"), "inner\n")?;
    for i in 0..300 {
        std::fs::write(root.join(format!("big/f{i:03}")), "x")?;
    }
    symlink("file.txt", root.join("link-file"))?;
    symlink("dir", root.join("link-dir"))?;
    symlink("missing.txt", root.join("link-dangling"))?;
    symlink("/etc/passwd", root.join("link-abs"))?;
    symlink("../../../../../../etc/passwd", root.join("link-out"))?;
    symlink("link-loop", root.join("link-loop"))?;
    std::fs::create_dir_all(ro.join("rdir"))?;
    std::fs::write(ro.join("r.txt"), "read only\n")?;
    for dir in [root, ro] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Every entry under `top`, sorted: path, type, size and content (files), target
/// (symlinks), link count. Times and inode numbers are not compared.
fn listing(top: &Path) -> std::io::Result<String> {
    let mut entries = Vec::new();
    walk(top, top, &mut entries)?;
    entries.sort();
    Ok(entries.concat())
}

fn walk(top: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .strip_prefix(top)
            .unwrap_or(&path)
            .display()
            .to_string();
        let meta = std::fs::symlink_metadata(&path)?;
        let line = if meta.file_type().is_symlink() {
            format!("{name} -> {}\n", std::fs::read_link(&path)?.display())
        } else if meta.is_dir() {
            walk(top, &path, out)?;
            format!("{name}/\n")
        } else {
            let content = std::fs::read(&path)?;
            let shown = if content.len() <= 40 {
                format!("{:?}", String::from_utf8_lossy(&content))
            } else {
                format!("{} bytes", content.len())
            };
            format!("{name} {shown} nlink={}\n", meta.nlink())
        };
        out.push(line);
    }
    Ok(())
}
