//! `features` (runc ≥ 1.1's JSON) and what `--version` says: what a caller may rely on.

/// The runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.0.2";

/// Mount options wasmux honours (the rest are ignored: a WASI preopen has no flags).
const MOUNT_OPTIONS: &[&str] = &["bind", "rbind", "ro", "rw"];

/// The `features` document: no namespaces, capabilities or seccomp (the Wasm sandbox is
/// the isolation), cgroupfs placement on v1 and v2; annotations name the engines and
/// Wasm variants.
pub fn document() -> serde_json::Value {
    let engines: Vec<&str> = wasmux::ENGINES.iter().map(|e| e.name).collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": [],
            "capabilities": [],
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {
            "io.github.wasmux.engines": engines.join(","),
            "io.github.wasmux.delegate": "non-Wasm entrypoints run on the delegate runtime (WASMUX_OCI_DELEGATE, default runc)",
            "module.wasm.image/variant": "compat,compat-smart",
            "run.oci.handler": format!("wasm,wasm-smart,{}", engines.join(",")),
        },
    })
}

/// `--version`'s text after the name: wasmux's version, the spec, the engines.
pub fn version_text() -> String {
    let engines: Vec<&str> = wasmux::ENGINES.iter().map(|e| e.name).collect();
    format!(
        "{}\nspec: {OCI_VERSION}\nengines: {}",
        env!("CARGO_PKG_VERSION"),
        engines.join(", ")
    )
}
