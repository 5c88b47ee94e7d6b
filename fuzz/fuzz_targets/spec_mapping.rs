//! `config.json` → `RunSpec`: arbitrary JSON, and structured configs with arbitrary
//! args, env, cwd, mounts (types, options, sources inside and outside the bundle,
//! missing ones) and annotations. Loading and mapping must return `Ok` or an error;
//! never panic, hang or touch anything outside the bundle.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

#[derive(Arbitrary, Debug)]
struct Mount {
    destination: String,
    kind: u8,
    source: u8,
    options: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Config {
    raw: Option<Vec<u8>>,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    root_path: u8,
    root_readonly: bool,
    mounts: Vec<Mount>,
    annotations: Vec<(u8, String)>,
    memory_limit: Option<i64>,
}

const KINDS: &[&str] = &["bind", "tmpfs", "proc", "sysfs", "cgroup", "", "weird"];
const SOURCES: &[&str] = &["data", "/nonexistent", "../outside", "rootfs/dir", "rootfs/hello.wasm", "", "/"];
const OPTIONS: &[&str] = &["ro", "rw", "bind", "rbind", "nosuid", "rro", "", "ro,rw"];
const ANNOTATIONS: &[&str] = &[
    "module.wasm.image/variant",
    "run.oci.handler",
    "io.kubernetes.cri.container-type",
    "other",
];
const ROOTS: &[&str] = &["rootfs", "/", "missing", "../", "rootfs/hello.wasm"];

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn config_json(config: &Config) -> Vec<u8> {
    if let Some(raw) = &config.raw {
        return raw.clone();
    }
    let mounts: Vec<_> = config
        .mounts
        .iter()
        .map(|m| {
            json!({
                "destination": m.destination,
                "type": pick(KINDS, m.kind),
                "source": pick(SOURCES, m.source),
                "options": m.options.iter().map(|o| pick(OPTIONS, *o)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let annotations: serde_json::Map<_, _> = config
        .annotations
        .iter()
        .map(|(k, v)| (pick(ANNOTATIONS, *k).to_owned(), json!(v)))
        .collect();
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "root": { "path": pick(ROOTS, config.root_path), "readonly": config.root_readonly },
        "process": {
            "user": { "uid": 0, "gid": 0 },
            "args": config.args,
            "env": config.env,
            "cwd": config.cwd,
        },
        "mounts": mounts,
        "annotations": annotations,
    });
    if let Some(limit) = config.memory_limit {
        spec["linux"] = json!({ "resources": { "memory": { "limit": limit } } });
    }
    serde_json::to_vec(&spec).unwrap_or_default()
}

fuzz_target!(|config: Config| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let root = dir.path();
    let made = std::fs::create_dir_all(root.join("rootfs/dir"))
        .and_then(|()| std::fs::create_dir_all(root.join("data")))
        .and_then(|()| std::fs::write(root.join("rootfs/hello.wasm"), b"\0asm\x01\0\0\0"))
        .and_then(|()| std::fs::write(root.join("rootfs/script"), b"#!/bin/sh\n"))
        .and_then(|()| std::fs::write(root.join("config.json"), config_json(&config)));
    if made.is_err() {
        return;
    }
    if let Ok(bundle) = wasmux::Bundle::load(root) {
        let _ = bundle.requested_engine();
        let _ = bundle.run_spec();
    }
});
