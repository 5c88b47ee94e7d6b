//! `linux.resources` beyond memory: what a Wasm container honours and what it does not,
//! said in the log rather than silently claimed.

use oci_spec::runtime::Spec;

/// Logs the limits that are not enforced. The memory limit is enforced inside the
/// engine (it is part of the run spec). A pids limit is met by construction: a
/// preview1 guest is one process and cannot start another. CPU shares, quotas and
/// cpusets are not applied (wasmux does not manage cgroups): a warning says so.
pub fn report_unenforced(spec: &Spec) {
    let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return;
    };
    if let Some(cpu) = resources.cpu() {
        let set = cpu.shares().is_some()
            || cpu.quota().is_some()
            || cpu.cpus().is_some()
            || cpu.mems().is_some()
            || cpu.realtime_runtime().is_some();
        if set {
            tracing::warn!(
                "linux.resources.cpu is not enforced for Wasm containers: wasmux-oci does not manage cgroups"
            );
        }
    }
    if let Some(pids) = resources.pids() {
        tracing::debug!(
            limit = pids.limit(),
            "pids limit met by construction: a Wasm guest is one process"
        );
    }
    if resources.block_io().is_some() || resources.hugepage_limits().is_some() {
        tracing::warn!(
            "linux.resources.blockIO and hugepageLimits are not enforced for Wasm containers"
        );
    }
}
