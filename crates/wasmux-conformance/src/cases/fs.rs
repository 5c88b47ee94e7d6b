//! The guest's file system: rootfs, cwd, mounts, read-only, escapes, listings, tmpfs,
//! many descriptors, devices.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wasmux::ExitStatus;

use super::probe;
use crate::suite::{Check, Ctx, expect_bytes};

fn expect_ok_stdout(ctx: &Ctx, bundle: &Path, want: &[u8]) -> Check {
    let ran = ctx.run(bundle);
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(want)
}

pub fn rootfs_read(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "read",
        &probe(&["read", "/etc/motd"]).file("/etc/motd", "from the rootfs\n"),
    );
    expect_ok_stdout(ctx, &bundle, b"from the rootfs\n")
}

pub fn cwd_relative(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "cwd",
        &probe(&["read", "in.txt"])
            .file("/work/in.txt", "from /work\n")
            .file("/in.txt", "from the root: wrong\n")
            .cwd("/work"),
    );
    expect_ok_stdout(ctx, &bundle, b"from /work\n")
}

pub fn rw_bind_mount(ctx: &Ctx) -> Check {
    let data = ctx.host_dir("rw", "data");
    let bundle = ctx.write(
        "rw",
        &probe(&["write", "/data/out.txt", "exact content ✓"]).bind(
            Path::new("data"),
            "/data",
            false,
        ),
    );
    expect_ok_stdout(ctx, &bundle, b"wrote /data/out.txt\n")?;
    let written = std::fs::read(data.join("out.txt")).map_err(|e| format!("host file: {e}"))?;
    expect_bytes("host file", &written, "exact content ✓".as_bytes())
}

/// Every file under `dir` with its bytes (directories as empty entries with a `/`).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in
            std::fs::read_dir(&current).unwrap_or_else(|e| panic!("{}: {e}", current.display()))
        {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                files.insert(path.join(""), Vec::new());
                pending.push(path);
            } else {
                files.insert(
                    path.clone(),
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")),
                );
            }
        }
    }
    files
}

const ALL_REFUSED: &[u8] =
    b"create: refused\nwrite: refused\ntruncate: refused\nrename: refused\ndelete: refused\nmkdir: refused\n";

pub fn ro_bind_mount(ctx: &Ctx) -> Check {
    let data = ctx.host_dir("ro", "data");
    std::fs::write(data.join("existing.txt"), b"original").map_err(|e| e.to_string())?;
    std::fs::create_dir(data.join("sub")).map_err(|e| e.to_string())?;
    let before = snapshot(&data);
    let bundle = ctx.write(
        "ro",
        &probe(&["mutate", "/data"]).bind(Path::new("data"), "/data", true),
    );
    expect_ok_stdout(ctx, &bundle, ALL_REFUSED)?;
    let reader = ctx.write(
        "ro-read",
        &probe(&["read", "/data/existing.txt"]).bind(&data, "/data", true),
    );
    expect_ok_stdout(ctx, &reader, b"original")?;
    if snapshot(&data) != before {
        return Err("the read-only host directory changed".into());
    }
    Ok(())
}

/// A read-only mount reached with `..` from a writable one stays read-only (an engine
/// whose `..` crosses preopens must not carry the writable one's rights along).
pub fn ro_via_dotdot(ctx: &Ctx) -> Check {
    let data = ctx.host_dir("dotdot", "data");
    std::fs::write(data.join("existing.txt"), b"original").map_err(|e| e.to_string())?;
    let before = snapshot(&data);
    let bundle = ctx.write(
        "dotdot",
        &probe(&["mutate", "/scratch/../data"])
            .tmpfs("/scratch")
            .bind(Path::new("data"), "/data", true),
    );
    expect_ok_stdout(ctx, &bundle, ALL_REFUSED)?;
    if snapshot(&data) != before {
        return Err("the read-only host directory changed".into());
    }
    Ok(())
}

/// A bind mount over a directory the rootfs also has shows the mount, also when the
/// working directory is not `/` (where the rootfs is offered directory by directory).
pub fn mount_shadows_rootfs(ctx: &Ctx) -> Check {
    let data = ctx.host_dir("shadow", "data");
    std::fs::write(data.join("which.txt"), b"mount").map_err(|e| e.to_string())?;
    for cwd in ["/", "/work"] {
        let bundle = ctx.write(
            &format!("shadow-cwd{}", cwd.replace('/', "-")),
            &probe(&["read", "/data/which.txt"])
                .file("/data/which.txt", "rootfs")
                .file("/work/.keep", "")
                .cwd(cwd)
                .bind(&data, "/data", true),
        );
        expect_ok_stdout(ctx, &bundle, b"mount")?;
    }
    Ok(())
}

pub fn readonly_root(ctx: &Ctx) -> Check {
    let bundle = ctx.write(
        "ro-root",
        &probe(&["mutate", "/"])
            .file("/existing.txt", "original")
            .root_readonly(true),
    );
    let before = snapshot(&bundle.join("rootfs"));
    expect_ok_stdout(ctx, &bundle, ALL_REFUSED)?;
    if snapshot(&bundle.join("rootfs")) != before {
        return Err("the read-only rootfs changed".into());
    }
    Ok(())
}

pub fn escapes(ctx: &Ctx) -> Check {
    ctx.host_dir("escape", "data");
    let attempts = [
        "/../../etc/hostname",
        "/../../../../../../etc/passwd",
        "../secret",
        "/../secret",
        "/data/../../secret",
        "/data/../../../../etc/passwd",
        "/abs-link/passwd",
        "/rel-link",
        "/up/secret",
        "/etc/passwd",
        // The host process's working directory (the suite test leaves a `secret` there).
        "secret",
        "./secret",
    ];
    let mut args = vec!["try-read"];
    args.extend(attempts);
    let bundle = ctx.write(
        "escape",
        &probe(&args).bind(Path::new("data"), "/data", false),
    );
    std::fs::write(bundle.join("secret"), b"host secret").map_err(|e| e.to_string())?;
    let rootfs = bundle.join("rootfs");
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, rootfs.join(name)).map_err(|e| e.to_string())
    };
    link("/etc", "abs-link")?;
    link("../secret", "rel-link")?;
    link("../../../../../..", "up")?;
    let want: String = attempts.iter().map(|a| format!("{a}: refused\n")).collect();
    expect_ok_stdout(ctx, &bundle, want.as_bytes())
}

pub fn dir_listing(ctx: &Ctx) -> Check {
    let data = ctx.host_dir("ls", "data");
    for name in ["a.txt", "b.txt"] {
        std::fs::write(data.join(name), name).map_err(|e| e.to_string())?;
    }
    let root = probe(&["ls", "/"])
        .file("/etc/motd", "x")
        .file("/file.txt", "y");
    let bundle = ctx.write("ls", &root.bind(Path::new("data"), "/data", true));
    // The root lists the rootfs exactly (the mount point /data does not exist in it).
    expect_ok_stdout(ctx, &bundle, b"etc\nfile.txt\nprobe.wasm\n")?;
    let bundle = ctx.write(
        "ls-mount",
        &probe(&["ls", "/data"]).bind(&data, "/data", true),
    );
    expect_ok_stdout(ctx, &bundle, b"a.txt\nb.txt\n")
}

pub fn tmpfs(ctx: &Ctx) -> Check {
    let bundle = ctx.write("tmpfs", &probe(&["tmpfs", "/scratch"]).tmpfs("/scratch"));
    let spec = ctx.prepare(&bundle).map_err(|e| e.to_string())?;
    let host = spec
        .mounts
        .iter()
        .find(|m| m.guest == "/scratch")
        .map(|m| m.host.clone())
        .ok_or("no /scratch mount in the spec")?;
    let ran = ctx.execute(&bundle, spec, Default::default());
    ran.expect_status(&ExitStatus::Exited(0))?;
    ran.expect_stdout(b"entries: Ok(0)\nread back: scratch\n")?;
    if host.exists() {
        return Err(format!(
            "tmpfs directory {} outlived the run",
            host.display()
        ));
    }
    Ok(())
}

pub fn many_open_files(ctx: &Ctx) -> Check {
    let data = ctx.host_dir("many", "data");
    let bundle = ctx.write(
        "many",
        &probe(&["open-many", "/data", "500"]).bind(Path::new("data"), "/data", false),
    );
    expect_ok_stdout(ctx, &bundle, b"held 500 files open\n")?;
    let last = std::fs::read_to_string(data.join("f499")).map_err(|e| e.to_string())?;
    if last != "499\n" {
        return Err(format!("f499 holds {last:?}"));
    }
    Ok(())
}

pub fn default_devices(ctx: &Ctx) -> Check {
    let bundle = ctx.write("devices", &probe(&["devices"]));
    expect_ok_stdout(
        ctx,
        &bundle,
        b"null read: Ok(0)\nnull write: true\nzero: true\nfull: refused\n\
          random: true\nurandom: true\n/dev/sda: absent\n/dev/mem: absent\n/dev/tty: absent\n/dev/shm: absent\n",
    )
}
