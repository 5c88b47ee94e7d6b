//! `linux.resources` beyond memory, CPU shares/quota and pids: what a Wasm container does
//! not honour, said in the log rather than silently claimed.

use oci_spec::runtime::Spec;

/// Logs the limits that are not enforced. The memory limit is enforced inside the
/// engine (it is part of the run spec); CPU shares and quota, and the pids limit, are
/// written to the container's cgroup ([`crate::cgroups`]), and a pids limit is met by
/// construction anyway (a preview1 guest cannot start a process). Cpusets, realtime
/// CPU, block I/O and hugepage limits are not applied.
pub fn report_unenforced(spec: &Spec) {
    let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return;
    };
    if let Some(cpu) = resources.cpu() {
        let unenforced = cpu.cpus().is_some()
            || cpu.mems().is_some()
            || cpu.realtime_runtime().is_some()
            || cpu.realtime_period().is_some();
        if unenforced {
            tracing::warn!(
                "linux.resources.cpu cpus, mems and realtime settings are not enforced for Wasm containers"
            );
        }
    }
    if resources.block_io().is_some() || resources.hugepage_limits().is_some() {
        tracing::warn!(
            "linux.resources.blockIO and hugepageLimits are not enforced for Wasm containers"
        );
    }
}
