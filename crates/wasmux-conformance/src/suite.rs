//! Running cases against an engine: each case gets a fresh directory, its runs are
//! captured, and the result is a verdict per case (pass, FAIL, unsupported).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use wasmux::{
    Bundle, CacheEvent, Capability, DynEngine, Error, ExitStatus, PrecompileCache, RunControl,
    RunSpec, StdioStream, Support, TrapKind,
};

use crate::BundleBuilder;

/// What a case checks returns: `Err` describes the first mismatch.
pub type Check = Result<(), String>;

/// One conformance case: a name for the matrix, what it needs, and its check.
pub struct Case {
    /// Short name, also the directory its bundles are written to.
    pub name: &'static str,
    /// Capabilities without which the case is `unsupported` rather than run.
    pub needs: &'static [Capability],
    /// Builds the bundles, runs them, compares.
    pub run: fn(&Ctx) -> Check,
}

/// The verdict of one case on one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Behaved as specified.
    Pass,
    /// Did not; the text says how.
    Fail(String),
    /// The engine declares it cannot do what the case needs, for this reason.
    Unsupported(String),
}

/// What a case works with: the engine and a fresh directory of its own.
pub struct Ctx<'a> {
    /// The engine under test.
    pub engine: &'a dyn DynEngine,
    /// This case's directory (bundles, host directories, captured output).
    pub dir: PathBuf,
}

/// A finished run: the status (or the error that kept it from starting) and its output.
#[derive(Debug)]
pub struct Ran {
    /// The typed outcome, or why it could not start.
    pub status: Result<ExitStatus, Error>,
    /// Everything the guest wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to the guest's stderr (including wasmux's exit reports).
    pub stderr: Vec<u8>,
    /// What the precompile cache did, when the run went through one.
    pub cache_event: Option<CacheEvent>,
}

/// Extra inputs for a run.
#[derive(Default)]
pub struct RunOptions {
    /// Bytes for the guest's stdin (empty when `None`).
    pub stdin: Option<Vec<u8>>,
    /// The control to run under (a fresh one when `None`).
    pub control: Option<RunControl>,
    /// Load through this precompile cache (no cache when `None`).
    pub cache: Option<PrecompileCache>,
}

impl Ctx<'_> {
    /// Writes `bundle` to `<case dir>/<name>` and returns the bundle directory.
    pub fn write(&self, name: &str, bundle: &BundleBuilder) -> PathBuf {
        bundle.write(&self.dir.join(name))
    }

    /// Creates (empty) and returns a host directory `<case dir>/<bundle>/<name>`, for a
    /// bundle that bind-mounts it by the relative source `<name>`.
    pub fn host_dir(&self, bundle: &str, name: &str) -> PathBuf {
        let dir = self.dir.join(bundle).join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        dir
    }

    /// Loads the bundle and maps it, as a runtime would before running it.
    pub fn prepare(&self, bundle: &Path) -> Result<RunSpec, Error> {
        Bundle::load(bundle)?.run_spec()
    }

    /// Prepares and runs a bundle with empty stdin, capturing stdout and stderr.
    pub fn run(&self, bundle: &Path) -> Ran {
        self.run_with(bundle, RunOptions::default())
    }

    /// [`run`](Self::run) with options.
    pub fn run_with(&self, bundle: &Path, options: RunOptions) -> Ran {
        match self.prepare(bundle) {
            Ok(spec) => self.execute(bundle, spec, options),
            Err(e) => Ran {
                status: Err(e),
                stdout: Vec::new(),
                stderr: Vec::new(),
                cache_event: None,
            },
        }
    }

    /// Runs an already prepared spec; output is captured next to the bundle.
    pub fn execute(&self, bundle: &Path, mut spec: RunSpec, options: RunOptions) -> Ran {
        let capture = |suffix: &str| bundle.with_extension(suffix);
        let stdin_path = capture("stdin");
        std::fs::write(&stdin_path, options.stdin.unwrap_or_default())
            .unwrap_or_else(|e| panic!("stdin file: {e}"));
        let open = |path: &Path| {
            std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let create = |path: &Path| {
            std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        spec.stdio.stdin = StdioStream::from(open(&stdin_path));
        spec.stdio.stdout = StdioStream::from(create(&capture("stdout")));
        spec.stdio.stderr = StdioStream::from(create(&capture("stderr")));
        let control = options.control.unwrap_or_default();
        let mut cache_event = None;
        let status = match &options.cache {
            None => wasmux::run_once(self.engine, spec, &control),
            Some(cache) => {
                self.engine
                    .load_cached(&spec.wasm, Some(cache))
                    .and_then(|(module, event)| {
                        cache_event = Some(event);
                        module.run(spec, &control)
                    })
            }
        };
        let read =
            |path: &Path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Ran {
            status,
            stdout: read(&capture("stdout")),
            stderr: read(&capture("stderr")),
            cache_event,
        }
    }
}

impl Ran {
    /// The status, or a description of why the run did not start.
    pub fn status(&self) -> Result<&ExitStatus, String> {
        self.status
            .as_ref()
            .map_err(|e| format!("did not start: {e}"))
    }

    /// Expects this exact status.
    pub fn expect_status(&self, want: &ExitStatus) -> Check {
        let got = self.status()?;
        if got != want {
            return Err(format!(
                "status {got:?}, want {want:?}; stderr: {}",
                self.stderr_text()
            ));
        }
        Ok(())
    }

    /// Expects a trap of this kind, with its message on stderr and nothing on stdout.
    pub fn expect_trap(&self, want: TrapKind) -> Check {
        match self.status()? {
            ExitStatus::Trapped { kind, .. } if *kind == want => {}
            other => return Err(format!("status {other:?}, want a {want} trap")),
        }
        if self.status()?.exit_code() != 134 {
            return Err("a trap must exit 134".into());
        }
        self.expect_stdout(b"")?;
        if !self.stderr_text().contains("wasm trap") {
            return Err(format!(
                "no trap message on stderr: {:?}",
                self.stderr_text()
            ));
        }
        Ok(())
    }

    /// Expects exactly these stdout bytes.
    pub fn expect_stdout(&self, want: &[u8]) -> Check {
        expect_bytes("stdout", &self.stdout, want)
    }

    /// Expects an error that kept the run from starting, with this exit code and text.
    pub fn expect_error(&self, code: u8, needle: &str) -> Check {
        match &self.status {
            Ok(status) => Err(format!(
                "ran to {status:?}, want an error with exit code {code}"
            )),
            Err(e) if e.exit_code() != code => Err(format!(
                "error exit code {} ({e}), want {code}",
                e.exit_code()
            )),
            Err(e) if !e.to_string().contains(needle) => {
                Err(format!("error {e:?} does not mention {needle:?}"))
            }
            Err(_) => Ok(()),
        }
    }

    /// Stderr as text, for messages.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Compares bytes, describing the first difference briefly (outputs can be megabytes).
pub fn expect_bytes(what: &str, got: &[u8], want: &[u8]) -> Check {
    if got == want {
        return Ok(());
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let show = |b: &[u8]| String::from_utf8_lossy(&b[at..b.len().min(at + 80)]).into_owned();
    Err(format!(
        "{what}: {} bytes, want {}; first difference at byte {at}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    ))
}

/// How long one case may take before it counts as hung.
pub const CASE_TIME_LIMIT: Duration = Duration::from_secs(120);

/// Runs `case` against `engine` in the fresh directory `dir`. The case runs on a thread
/// of its own: one that hangs past [`CASE_TIME_LIMIT`] is a FAIL and its thread is left
/// behind, so the cases after it still run.
pub fn run_case(engine: Arc<dyn DynEngine>, case: &'static Case, dir: PathBuf) -> Verdict {
    run_case_within(engine, case, dir, CASE_TIME_LIMIT)
}

fn run_case_within(
    engine: Arc<dyn DynEngine>,
    case: &'static Case,
    dir: PathBuf,
    limit: Duration,
) -> Verdict {
    if let Some(reason) = unsupported(engine.as_ref(), case.needs) {
        return Verdict::Unsupported(reason);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("clearing {}: {e}", dir.display()));
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let (done, result) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("case-{}", case.name))
        .spawn(move || {
            let ctx = Ctx {
                engine: engine.as_ref(),
                dir,
            };
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (case.run)(&ctx)));
            let _ = done.send(outcome);
        });
    if let Err(e) = spawned {
        return Verdict::Fail(format!("spawning the case thread: {e}"));
    }
    match result.recv_timeout(limit) {
        Ok(Ok(Ok(()))) => Verdict::Pass,
        Ok(Ok(Err(why))) => Verdict::Fail(why),
        Ok(Err(panic)) => Verdict::Fail(format!("panicked: {}", panic_text(&panic))),
        Err(_) => Verdict::Fail(format!(
            "hung for more than {limit:?} (its thread is left running)"
        )),
    }
}

/// Why `engine` cannot run a case that `needs` these capabilities, if it cannot.
pub fn unsupported(engine: &dyn DynEngine, needs: &[Capability]) -> Option<String> {
    needs.iter().find_map(|&need| match engine.support(need) {
        Support::Supported => None,
        Support::Unsupported(reason) => Some(format!("{}: {reason}", need.name())),
    })
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(non-string panic)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeps(_: &Ctx) -> Check {
        std::thread::sleep(Duration::from_secs(2));
        Ok(())
    }

    static SLEEPS: Case = Case {
        name: "sleeps",
        needs: &[],
        run: sleeps,
    };

    #[test]
    fn a_hung_case_fails_on_its_own_after_its_limit() {
        let engine: Arc<dyn DynEngine> =
            Arc::from(wasmux::engine_by_name(wasmux::ENGINES[0].name).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let verdict = run_case_within(
            engine,
            &SLEEPS,
            dir.path().join("c"),
            Duration::from_millis(50),
        );
        assert!(
            matches!(&verdict, Verdict::Fail(why) if why.contains("hung for more than 50ms")),
            "{verdict:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "it did not wait for the case"
        );
    }
}
