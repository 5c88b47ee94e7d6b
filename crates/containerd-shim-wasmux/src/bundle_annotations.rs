//! The annotations of the container this shim was started for, which every container
//! it runs gets.
//!
//! containerd-shim-wasm 1.0.1 shows a sandbox the process's args, env and entrypoint,
//! not the spec's annotations. But containerd starts a shim in the bundle directory of
//! the container it starts it for (containerd-shimkit itself reads `config.json` there,
//! for the pod's sandbox ID), and CRI runs all of a pod's containers in the shim of its
//! sandbox. So the shim reads that `config.json` once, first thing, before the zygote
//! every container process comes from is forked; every container init inherits what it
//! read. A `ctr run` container gets its own annotations (one shim each); a pod's
//! containers get the pod's (containerd's `pod_annotations` copies them into the
//! sandbox's spec). A pod container's own annotations (`container_annotations`) do not
//! reach it: they are only in its own `config.json`, which its init cannot see after
//! `pivot_root` and the library does not pass on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

static STARTED_FOR: OnceLock<Option<HashMap<String, String>>> = OnceLock::new();

/// Reads the annotations of `config.json` in the working directory (the bundle the
/// shim was started in); called once, before the zygote is forked.
pub(crate) fn remember() {
    STARTED_FOR.get_or_init(|| read(Path::new("config.json")));
}

/// What [`remember`] read: `None` without a readable `config.json` or annotations.
pub(crate) fn get() -> Option<&'static HashMap<String, String>> {
    STARTED_FOR.get()?.as_ref()
}

fn read(path: &Path) -> Option<HashMap<String, String>> {
    let text = std::fs::read(path).ok()?;
    let spec: serde_json::Value = serde_json::from_slice(&text).ok()?;
    serde_json::from_value(spec.get("annotations")?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_read_from_a_spec_and_anything_else_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"ociVersion":"1.0.2","annotations":{"wasmux.io/timeout":"2"}}"#,
        )
        .unwrap();
        let read_back = read(&config).unwrap();
        assert_eq!(read_back["wasmux.io/timeout"], "2");
        std::fs::write(&config, r#"{"ociVersion":"1.0.2"}"#).unwrap();
        assert_eq!(read(&config), None);
        std::fs::write(&config, "not json").unwrap();
        assert_eq!(read(&config), None);
        assert_eq!(read(&dir.path().join("missing.json")), None);
    }
}
