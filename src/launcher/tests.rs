use std::collections::HashMap;

use super::*;

fn launcher(vars: &[(&str, &str)]) -> Launcher {
    let vars: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    Launcher::from_vars(|name| vars.get(name).cloned())
}

#[cfg(all(feature = "wasmtime", feature = "wasmer"))]
fn chosen(launcher: &Launcher, requested: Option<&str>) -> Result<String> {
    launcher
        .choose_engine(&Requested {
            engine: requested.map(str::to_owned),
            ..Requested::default()
        })
        .map(|engine| engine.name().to_owned())
}

/// One ordered rule: the caller's choice, the workload's, the node's default, wasmux's.
/// An unknown name is an error wherever it comes from, never skipped.
#[cfg(all(feature = "wasmtime", feature = "wasmer"))]
#[test]
fn the_engine_is_the_callers_then_the_workloads_then_the_nodes_then_the_default() {
    let node = launcher(&[(ENGINE_VAR, "wasmer")]);
    assert_eq!(chosen(&launcher(&[]), None).unwrap(), "wasmtime");
    assert_eq!(chosen(&node, None).unwrap(), "wasmer");
    assert_eq!(chosen(&node, Some("wasmtime")).unwrap(), "wasmtime");
    let flag = node.clone().engine("wasmtime");
    assert_eq!(chosen(&flag, Some("wasmer")).unwrap(), "wasmtime");
    assert!(matches!(
        chosen(&launcher(&[]), Some("nope")),
        Err(Error::UnknownEngine { .. })
    ));
    assert!(chosen(&launcher(&[]).engine("nope"), Some("wasmtime")).is_err());
}

/// The node's allow-list holds against every chooser, the image's annotation included.
#[cfg(all(feature = "wasmtime", feature = "wasmer"))]
#[test]
fn the_allow_list_refuses_any_other_engine_by_name() {
    let node = launcher(&[
        (ALLOWED_ENGINES_VAR, " wasmtime ,"),
        (ENGINE_VAR, "wasmtime"),
    ]);
    assert_eq!(chosen(&node, None).unwrap(), "wasmtime");
    for refused in [
        chosen(&node, Some("wasmer")),
        chosen(&node.clone().engine("wasmer"), None),
    ] {
        match refused {
            Err(Error::EngineNotAllowed { name, allowed }) => {
                assert_eq!((name.as_str(), allowed.as_str()), ("wasmer", "wasmtime"));
            }
            other => panic!("{other:?}"),
        }
    }
}

/// One cache policy: a flag, else the wasmux variables, else the caller's default, else
/// the user's cache directory.
#[test]
fn the_cache_is_the_flags_then_the_variables_then_the_default() {
    let home = &[("HOME", "/home/u")][..];
    assert_eq!(
        launcher(home).cache_location(),
        Some(PathBuf::from("/home/u/.cache/wasmux/modules"))
    );
    assert_eq!(launcher(&[]).cache_location(), None);
    assert_eq!(
        launcher(&[])
            .cache_default_when_homeless("/var/c")
            .cache_location(),
        Some(PathBuf::from("/var/c"))
    );
    assert_eq!(
        launcher(home)
            .cache_default_when_homeless("/var/c")
            .cache_location(),
        Some(PathBuf::from("/home/u/.cache/wasmux/modules"))
    );
    assert_eq!(
        launcher(home).cache_default("/node").cache_location(),
        Some(PathBuf::from("/node"))
    );
    let said = launcher(&[("WASMUX_CACHE_DIR", "/c"), ("HOME", "/h")]);
    assert_eq!(
        said.clone().cache_default("/node").cache_location(),
        Some(PathBuf::from("/c"))
    );
    let off = launcher(&[("WASMUX_CACHE", "off")]).cache_default("/node");
    assert_eq!(off.cache_location(), None);
    assert_eq!(said.clone().no_cache().cache_location(), None);
    assert_eq!(
        said.cache_dir("/flag").cache_location(),
        Some(PathBuf::from("/flag"))
    );
}

/// The whole path in one call: the bundle's module is compiled into the given cache on
/// the first run, and the second run of the same bundle finds it there.
#[cfg(feature = "wasmtime")]
#[test]
fn run_bundle_fills_the_cache_once_and_runs_to_the_exit_status() {
    let bundle = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello");
    let cache = tempfile::tempdir().unwrap();
    let launcher = launcher(&[]).engine("wasmtime").cache_dir(cache.path());
    // Entries are replaced by rename, so a recompile would change the inode.
    let entries = || -> Vec<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().ino())
            .collect()
    };
    let status = launcher.run_bundle(bundle, &RunControl::new()).unwrap();
    assert_eq!(status, ExitStatus::Exited(0));
    let stored = entries();
    assert_eq!(stored.len(), 1);
    let again = launcher.run_bundle(bundle, &RunControl::new()).unwrap();
    assert_eq!(again, ExitStatus::Exited(0));
    assert_eq!(entries(), stored);
}

/// A workload's options build its engine, under the caller's: an option the engine
/// lacks is refused by the engine, whoever set it.
#[cfg(all(feature = "wasmtime", feature = "wasmer"))]
#[test]
fn a_workloads_options_build_its_engine_under_the_callers() {
    let workload = Requested {
        engine: Some("wasmer".into()),
        options: EngineOptions::new()
            .with_tier(crate::Tier::Optimized)
            .with_stack_size(1 << 20),
    };
    let caller = launcher(&[]).options(EngineOptions::new().with_tier(crate::Tier::Baseline));
    assert_eq!(
        caller.options_for(&workload),
        EngineOptions::new()
            .with_tier(crate::Tier::Baseline)
            .with_stack_size(1 << 20)
    );
    // wasmer is a baseline compiler: the workload's optimized tier is refused, naming
    // the engine; the caller's baseline goes over it.
    let tier_only = Requested {
        options: EngineOptions::new().with_tier(crate::Tier::Optimized),
        ..workload.clone()
    };
    let refused = launcher(&[])
        .choose_engine(&tier_only)
        .err()
        .unwrap()
        .to_string();
    assert!(
        refused.contains("wasmer") && refused.contains("tier"),
        "{refused}"
    );
    assert_eq!(caller.choose_engine(&tier_only).unwrap().name(), "wasmer");
    let on_wasmtime = Requested {
        engine: Some("wasmtime".into()),
        ..workload
    };
    assert_eq!(
        caller.choose_engine(&on_wasmtime).unwrap().name(),
        "wasmtime"
    );
}
