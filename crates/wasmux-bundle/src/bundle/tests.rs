use super::*;
use crate::{ENGINE_OPTIONS_ANNOTATION, TIMEOUT_ANNOTATION};
use std::fs;
use std::time::Duration;
use wasmux_core::WasmKind;

const HELLO_WAT: &str = r#"(module (func (export "_start")))"#;

/// A bundle directory with `rootfs/` holding `files`, and `config.json` from `config`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(config: serde_like::Value, files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("rootfs")).unwrap();
        for (path, bytes) in files {
            let host = dir.path().join("rootfs").join(path.trim_start_matches('/'));
            fs::create_dir_all(host.parent().unwrap()).unwrap();
            fs::write(host, bytes).unwrap();
        }
        fs::write(dir.path().join("config.json"), config.0).unwrap();
        Fixture { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run_spec(&self) -> Result<RunSpec> {
        Bundle::load(self.path())?.run_spec()
    }
}

/// Minimal JSON building, so each test shows the config.json it maps.
mod serde_like {
    pub struct Value(pub String);
}

fn config(process: &str, extra: &str) -> serde_like::Value {
    let root = if extra.contains(r#""root""#) {
        ""
    } else {
        r#","root":{"path":"rootfs"}"#
    };
    serde_like::Value(format!(
        r#"{{"ociVersion":"1.0.2","process":{{"user":{{"uid":0,"gid":0}},{process}}}{root}{extra}}}"#
    ))
}

fn simple(args: &str) -> serde_like::Value {
    config(&format!(r#""args":{args},"cwd":"/""#), "")
}

#[test]
fn maps_args_env_cwd_root_and_limits() {
    let f = Fixture::new(
        config(
            r#""args":["/app/m.wasm","a b","ünï",""],"env":["A=1","B=x=y","EMPTY="],"cwd":"/app""#,
            r#","root":{"path":"rootfs","readonly":true},"linux":{"resources":{"memory":{"limit":33554432}}}"#,
        ),
        &[("app/m.wasm", HELLO_WAT.as_bytes())],
    );
    let spec = f.run_spec().unwrap();
    assert_eq!(spec.args, ["/app/m.wasm", "a b", "ünï", ""]);
    let env: Vec<(&str, &str)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, [("A", "1"), ("B", "x=y"), ("EMPTY", "")]);
    assert_eq!(spec.cwd, "/app");
    assert_eq!(spec.wasm.kind, WasmKind::CoreModule);
    let guests: Vec<&str> = spec.mounts.iter().map(|m| m.guest.as_str()).collect();
    assert_eq!(guests, ["/", "/dev"]);
    assert!(spec.mounts[0].read_only);
    assert_eq!(spec.limits.memory_bytes, Some(32 << 20));
    assert_eq!(spec.entry, None);
}

#[test]
fn entrypoint_resolves_relative_to_cwd_and_selects_an_export() {
    let f = Fixture::new(
        config(r#""args":["m.wasm#hello_export"],"cwd":"/app""#, ""),
        &[("app/m.wasm", HELLO_WAT.as_bytes())],
    );
    let spec = f.run_spec().unwrap();
    assert_eq!(spec.entry.as_deref(), Some("hello_export"));
    assert_eq!(spec.wasm.origin, "/app/m.wasm");
    assert_eq!(spec.args, ["m.wasm#hello_export"]);
}

#[test]
fn relative_root_path_resolves_against_the_bundle() {
    let f = Fixture::new(
        simple(r#"["/m.wasm"]"#),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    let bundle = Bundle::load(f.path()).unwrap();
    assert_eq!(bundle.rootfs(), f.path().join("rootfs"));
}

#[test]
fn mounts_map_to_preopens_tmpfs_and_ignored_kinds() {
    let data = tempfile::tempdir().unwrap();
    fs::write(data.path().join("file"), b"x").unwrap();
    let mounts = format!(
        r#","mounts":[
            {{"destination":"/data","type":"bind","source":"{d}","options":["rbind","rw"]}},
            {{"destination":"/ro","source":"{d}","options":["bind","ro"]}},
            {{"destination":"/etc/hosts","type":"bind","source":"{d}/file","options":["bind"]}},
            {{"destination":"/tmp","type":"tmpfs","source":"tmpfs"}},
            {{"destination":"/proc","type":"proc","source":"proc"}},
            {{"destination":"/sys","type":"sysfs","source":"sysfs","options":["ro"]}}
        ]"#,
        d = data.path().display()
    );
    let f = Fixture::new(
        config(r#""args":["/m.wasm"],"cwd":"/""#, &mounts),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    let spec = f.run_spec().unwrap();
    let table: Vec<(&str, bool)> = spec
        .mounts
        .iter()
        .map(|m| (m.guest.as_str(), m.read_only))
        .collect();
    assert_eq!(
        table,
        [
            ("/", false),
            ("/data", false),
            ("/ro", true),
            ("/tmp", false),
            ("/dev", false)
        ]
    );
    let scratch = spec.mounts[3].host.clone();
    assert!(scratch.is_dir() && fs::read_dir(&scratch).unwrap().next().is_none());
    drop(spec);
    assert!(
        !scratch.exists(),
        "tmpfs scratch dir must be removed with the spec"
    );
}

#[test]
fn env_entry_without_equals_is_refused() {
    let f = Fixture::new(
        config(r#""args":["/m.wasm"],"env":["NOEQUALS"],"cwd":"/""#, ""),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    let err = f.run_spec().unwrap_err();
    assert!(
        matches!(err, Error::InvalidEnv { ref entry } if entry == "NOEQUALS"),
        "{err}"
    );
    assert_eq!(err.exit_code(), 125);
}

#[test]
fn missing_mount_source_is_refused() {
    let f = Fixture::new(
        config(
            r#""args":["/m.wasm"],"cwd":"/""#,
            r#","mounts":[{"destination":"/data","type":"bind","source":"/definitely/not/here"}]"#,
        ),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    let err = f.run_spec().unwrap_err();
    assert!(matches!(err, Error::MountSourceMissing { .. }), "{err}");
    assert_eq!(err.exit_code(), 125);
}

#[test]
fn missing_entrypoint_is_127() {
    let f = Fixture::new(simple(r#"["/nope.wasm"]"#), &[]);
    let err = f.run_spec().unwrap_err();
    assert!(matches!(err, Error::EntrypointNotFound { .. }), "{err}");
    assert_eq!(err.exit_code(), 127);
}

#[test]
fn entrypoint_symlink_cannot_leave_the_rootfs() {
    let f = Fixture::new(simple(r#"["/m.wasm"]"#), &[]);
    std::os::unix::fs::symlink("/etc/hostname", f.path().join("rootfs/m.wasm")).unwrap();
    let err = f.run_spec().unwrap_err();
    assert!(matches!(err, Error::EntrypointNotFound { .. }), "{err}");
}

#[test]
fn text_under_compat_is_not_runnable() {
    let f = Fixture::new(
        config(
            r#""args":["/m.wasm"],"cwd":"/""#,
            r#","annotations":{"module.wasm.image/variant":"compat"}"#,
        ),
        &[("m.wasm", b"just some text\n")],
    );
    let err = f.run_spec().unwrap_err();
    assert!(matches!(err, Error::NotWasm { .. }), "{err}");
    assert_eq!(err.exit_code(), 126);
}

#[test]
fn elf_under_compat_smart_is_not_a_wasm_workload() {
    for content in [&b"\x7fELF\x02\x01\x01\0"[..], b"#!/bin/sh\necho hi\n"] {
        let f = Fixture::new(
            config(
                r#""args":["/bin/app"],"cwd":"/""#,
                r#","annotations":{"module.wasm.image/variant":"compat-smart"}"#,
            ),
            &[("bin/app", content)],
        );
        let err = f.run_spec().unwrap_err();
        assert!(matches!(err, Error::NotAWasmWorkload { .. }), "{err}");
    }
}

#[test]
fn invalid_config_json_is_125() {
    for broken in [
        "{ not json",
        r#"{"ociVersion":"1.0.2","process":{"args":"not-a-list"}}"#,
    ] {
        let f = Fixture::new(serde_like::Value(broken.into()), &[]);
        let err = Bundle::load(f.path()).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        assert_eq!(err.exit_code(), 125);
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Bundle::load(empty.path()),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn relative_cwd_and_dotdot_destinations_are_refused() {
    let f = Fixture::new(
        config(r#""args":["/m.wasm"],"cwd":"rel""#, ""),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    assert!(matches!(f.run_spec(), Err(Error::InvalidBundle(_))));
    let f = Fixture::new(
        config(
            r#""args":["/m.wasm"],"cwd":"/""#,
            r#","mounts":[{"destination":"/a/../../x","type":"tmpfs","source":"tmpfs"}]"#,
        ),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    assert!(matches!(f.run_spec(), Err(Error::InvalidBundle(_))));
}

#[test]
fn missing_rootfs_and_empty_args_are_refused() {
    let f = Fixture::new(simple(r#"[]"#), &[]);
    assert!(matches!(f.run_spec(), Err(Error::InvalidBundle(_))));
    fs::remove_dir(f.path().join("rootfs")).unwrap();
    assert!(matches!(
        Bundle::load(f.path()),
        Err(Error::InvalidBundle(_))
    ));
}

#[test]
fn handler_annotation_names_the_engine() {
    let f = Fixture::new(
        config(
            r#""args":["/m.wasm"],"cwd":"/""#,
            r#","annotations":{"run.oci.handler":"wasmtime"}"#,
        ),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    assert_eq!(
        Bundle::load(f.path()).unwrap().requested_engine(),
        Some("wasmtime")
    );
}

#[test]
fn split_entry_only_takes_a_trailing_name() {
    assert_eq!(split_entry("/m.wasm#f"), ("/m.wasm", Some("f")));
    assert_eq!(split_entry("/m.wasm"), ("/m.wasm", None));
    assert_eq!(split_entry("/a#b/m.wasm"), ("/a#b/m.wasm", None));
    assert_eq!(split_entry("/m.wasm#"), ("/m.wasm#", None));
}

#[test]
fn dev_gets_the_default_devices_unless_bind_mounted() {
    use std::os::unix::fs::FileTypeExt;
    let f = Fixture::new(
        config(
            r#""args":["/m.wasm"],"cwd":"/""#,
            r#","mounts":[{"destination":"/dev","type":"tmpfs","source":"tmpfs"}]"#,
        ),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    let spec = f.run_spec().unwrap();
    let dev: Vec<_> = spec.mounts.iter().filter(|m| m.guest == "/dev").collect();
    assert_eq!(dev.len(), 1, "the tmpfs /dev is reused, not doubled");
    let mut names: Vec<String> = fs::read_dir(&dev[0].host)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // Creating device nodes needs CAP_MKNOD; without it /dev is empty by design.
    if !names.is_empty() {
        assert_eq!(names, ["full", "null", "random", "urandom", "zero"]);
        let meta = fs::metadata(dev[0].host.join("null")).unwrap();
        assert!(meta.file_type().is_char_device());
    }

    let own_dev = tempfile::tempdir().unwrap();
    let mounts = format!(
        r#","mounts":[{{"destination":"/dev","type":"bind","source":"{}"}}]"#,
        own_dev.path().display()
    );
    let f = Fixture::new(
        config(r#""args":["/m.wasm"],"cwd":"/""#, &mounts),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    let spec = f.run_spec().unwrap();
    assert_eq!(spec.mounts.last().unwrap().host, own_dev.path());
    assert_eq!(
        fs::read_dir(own_dev.path()).unwrap().count(),
        0,
        "a bound /dev is left alone"
    );
}

#[test]
fn scratch_dirs_go_under_the_scratch_root_when_one_is_set() {
    let f = Fixture::new(
        config(
            r#""args":["/m.wasm"],"cwd":"/""#,
            r#","mounts":[{"destination":"/tmp","type":"tmpfs","source":"tmpfs"}]"#,
        ),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    let root = tempfile::tempdir().unwrap();
    let mut bundle = Bundle::load(f.path()).unwrap();
    bundle.set_scratch_root(root.path());
    let spec = bundle.run_spec().unwrap();
    let scratch: Vec<&Path> = spec
        .mounts
        .iter()
        .filter(|m| m.guest == "/tmp" || m.guest == "/dev")
        .map(|m| m.host.as_path())
        .collect();
    assert_eq!(scratch.len(), 2);
    for dir in &scratch {
        assert_eq!(dir.parent(), Some(root.path()), "{}", dir.display());
    }
    drop(spec);
    assert!(fs::read_dir(root.path()).unwrap().next().is_none());
}

/// Only this user may look into a run's scratch directories: they hold the guest's data.
#[test]
fn scratch_dirs_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(
        config(
            r#""args":["/m.wasm"],"cwd":"/""#,
            r#","mounts":[{"destination":"/tmp","type":"tmpfs","source":"tmpfs"}]"#,
        ),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    let spec = f.run_spec().unwrap();
    let tmp = spec.mounts.iter().find(|m| m.guest == "/tmp").unwrap();
    let mode = fs::metadata(&tmp.host).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// A NUL byte would silently cut the guest's C string short: refused, naming where.
#[test]
fn nul_bytes_in_args_or_env_are_refused() {
    let f = Fixture::new(
        config(r#""args":["/m.wasm","a\u0000b"],"cwd":"/""#, ""),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    let err = f.run_spec().unwrap_err();
    assert!(err.to_string().contains("process.args[1]"), "{err}");
    let f = Fixture::new(
        config(r#""args":["/m.wasm"],"env":["A=x\u0000y"],"cwd":"/""#, ""),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    assert!(matches!(f.run_spec(), Err(Error::InvalidEnv { .. })));
}

/// A missing or non-directory working directory fails the mapping (so `create`), not
/// the run.
#[test]
fn a_cwd_that_is_not_a_directory_fails_the_mapping() {
    for cwd in ["/missing", "/m.wasm"] {
        let f = Fixture::new(
            config(&format!(r#""args":["/m.wasm"],"cwd":"{cwd}""#), ""),
            &[("m.wasm", HELLO_WAT.as_bytes())],
        );
        let err = f.run_spec().unwrap_err();
        assert!(matches!(err, Error::InvalidBundle(_)), "{cwd}: {err}");
        assert!(err.to_string().contains("cwd"), "{cwd}: {err}");
    }
}

/// The parser's message quotes the image's bytes: terminal escapes reach the user
/// escaped.
#[test]
fn wat_errors_escape_control_characters() {
    let f = Fixture::new(
        simple(r#"["/m.wat"]"#),
        &[("m.wat", b"(module \x1b[2J\x1b]0;pwned\x07 (func))")],
    );
    let err = f.run_spec().unwrap_err().to_string();
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert!(err.contains("\\u{1b}"), "{err:?}");
}

#[test]
fn the_timeout_annotation_sets_the_deadline_and_nonsense_is_refused() {
    let with = |value: &str| {
        Fixture::new(
            config(
                r#""args":["/m.wasm"],"cwd":"/""#,
                &format!(r#","annotations":{{"wasmux.io/timeout":"{value}"}}"#),
            ),
            &[("m.wasm", HELLO_WAT.as_bytes())],
        )
        .run_spec()
    };
    assert_eq!(
        with("2.5").unwrap().limits.timeout,
        Some(Duration::from_millis(2500))
    );
    for bad in ["0", "-1", "soon", "", "inf", "NaN"] {
        let message = with(bad).unwrap_err().to_string();
        assert!(message.contains(TIMEOUT_ANNOTATION), "{bad:?}: {message}");
    }
    let without = Fixture::new(
        simple(r#"["/m.wasm"]"#),
        &[("m.wasm", HELLO_WAT.as_bytes())],
    );
    assert_eq!(without.run_spec().unwrap().limits.timeout, None);
}

#[test]
fn the_engine_options_annotation_is_requested_and_a_typo_is_refused_by_name() {
    let with = |value: &str| {
        Fixture::new(
            config(
                r#""args":["/m.wasm"],"cwd":"/""#,
                &format!(
                    r#","annotations":{{"wasmux.io/engine-options":"{value}","run.oci.handler":"wasmer"}}"#
                ),
            ),
            &[("m.wasm", HELLO_WAT.as_bytes())],
        )
    };
    let fixture = with("tier=baseline, stack-size=1m");
    let requested = Bundle::load(fixture.path()).unwrap().requested();
    assert_eq!(requested.engine.as_deref(), Some("wasmer"));
    assert_eq!(
        requested.options,
        EngineOptions::new()
            .with_tier(wasmux_core::Tier::Baseline)
            .with_stack_size(1 << 20)
    );
    for bad in ["tier=fast", "stak-size=1m", "pooling"] {
        let fixture = with(bad);
        let message = Bundle::load(fixture.path()).unwrap_err().to_string();
        assert!(
            message.contains(ENGINE_OPTIONS_ANNOTATION) && message.contains(bad),
            "{bad:?}: {message}"
        );
    }
}
