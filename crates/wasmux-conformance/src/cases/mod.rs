//! Every conformance case, grouped by what it exercises. Each is a real OCI bundle
//! (written under the case's directory) and a comparison of what the guest did.

mod errors;
mod escapes;
mod faults;
mod fs;
mod limits;
mod precompile;
mod process;
mod stdio;

use crate::BundleBuilder;
use crate::guests;
use wasmux::Capability;

use crate::suite::Case;

/// The whole suite, in matrix order.
pub const ALL: &[Case] = &[
    Case {
        name: "hello",
        needs: &[],
        run: process::hello,
    },
    Case {
        name: "argv-verbatim",
        needs: &[],
        run: process::argv_verbatim,
    },
    Case {
        name: "env-exact",
        needs: &[],
        run: process::env_exact,
    },
    Case {
        name: "exit-codes",
        needs: &[],
        run: process::exit_codes,
    },
    Case {
        name: "traps",
        needs: &[],
        run: process::traps,
    },
    Case {
        name: "stdin-echo-1mib",
        needs: &[],
        run: stdio::stdin_echo,
    },
    Case {
        name: "large-output",
        needs: &[],
        run: stdio::large_output,
    },
    Case {
        name: "rootfs-read",
        needs: &[],
        run: fs::rootfs_read,
    },
    Case {
        name: "cwd-relative",
        needs: &[],
        run: fs::cwd_relative,
    },
    Case {
        name: "rw-bind-mount",
        needs: &[],
        run: fs::rw_bind_mount,
    },
    Case {
        name: "ro-bind-mount",
        needs: &[],
        run: fs::ro_bind_mount,
    },
    Case {
        name: "ro-via-dotdot",
        needs: &[],
        run: fs::ro_via_dotdot,
    },
    Case {
        name: "mount-shadows-rootfs",
        needs: &[],
        run: fs::mount_shadows_rootfs,
    },
    Case {
        name: "readonly-root",
        needs: &[],
        run: fs::readonly_root,
    },
    Case {
        name: "escapes",
        needs: &[],
        run: fs::escapes,
    },
    Case {
        name: "dir-listing",
        needs: &[],
        run: fs::dir_listing,
    },
    Case {
        name: "compute",
        needs: &[],
        run: process::compute,
    },
    Case {
        name: "clocks-random",
        needs: &[],
        run: process::clocks_random,
    },
    Case {
        name: "tmpfs",
        needs: &[],
        run: fs::tmpfs,
    },
    Case {
        name: "memory-limit",
        needs: &[Capability::MemoryLimit],
        run: limits::memory_limit,
    },
    Case {
        name: "memory-limit-own-maximum",
        needs: &[Capability::MemoryLimit],
        run: limits::memory_limit_charges_only_grows_that_happen,
    },
    Case {
        name: "kill-deadline",
        needs: &[Capability::Interrupt],
        run: limits::kill,
    },
    Case {
        name: "custom-entry",
        needs: &[],
        run: process::custom_entry,
    },
    Case {
        name: "reactor-entry",
        needs: &[],
        run: process::reactor_entry,
    },
    Case {
        name: "wat-entrypoint",
        needs: &[],
        run: process::wat_entrypoint,
    },
    Case {
        name: "component",
        needs: &[Capability::Components],
        run: process::component,
    },
    Case {
        name: "bad-bundles",
        needs: &[],
        run: errors::bad_bundles,
    },
    Case {
        name: "compat-smart-linux",
        needs: &[],
        run: errors::compat_smart_linux,
    },
    Case {
        name: "many-open-files",
        needs: &[],
        run: fs::many_open_files,
    },
    Case {
        name: "concurrent-isolation",
        needs: &[],
        run: limits::concurrent_isolation,
    },
    Case {
        name: "default-devices",
        needs: &[],
        run: fs::default_devices,
    },
    Case {
        name: "stdout-reader-goes-away",
        needs: &[],
        run: faults::stdout_reader_goes_away,
    },
    Case {
        name: "mount-source-vanishes",
        needs: &[],
        run: faults::mount_source_vanishes,
    },
    Case {
        name: "deadline-stdout-full",
        needs: &[Capability::Interrupt],
        run: faults::deadline_with_stdout_full,
    },
    Case {
        name: "deadline-stdin-silent",
        needs: &[Capability::Interrupt],
        run: faults::deadline_with_stdin_silent,
    },
    Case {
        name: "10000-exports",
        needs: &[],
        run: faults::many_exports,
    },
    Case {
        name: "64mib-data-segment",
        needs: &[],
        run: faults::huge_data_segment,
    },
    Case {
        name: "precompile-cache",
        needs: &[Capability::Precompile],
        run: precompile::cache_round_trip,
    },
    Case {
        name: "symlink-swap-race",
        needs: &[],
        run: escapes::symlink_swap_race,
    },
    Case {
        name: "device-nodes",
        needs: &[],
        run: escapes::device_nodes,
    },
    Case {
        name: "table-limit",
        needs: &[Capability::MemoryLimit],
        run: escapes::table_limit,
    },
    Case {
        name: "fifo-entrypoint",
        needs: &[],
        run: escapes::fifo_entrypoint,
    },
];

/// A bundle running the probe guest with these arguments.
fn probe(args: &[&str]) -> BundleBuilder {
    BundleBuilder::with_module(&guests::core_module("probe"), args)
}
