//! The `base` recipe: Debian bookworm minbase from the host's own mirror.
//!
//! `mmdebstrap` runs inside a private mount namespace (`unshare --mount`),
//! so the `/proc`, `/sys` and `/dev` mounts it makes in the target vanish
//! with it even if it is killed. Afterwards: user `user` (1000:1000, home
//! `/home/user`, `/bin/bash`) with passwordless sudo, `/tmp` 1777, and no
//! apt caches or package lists (run `apt-get update` before installing).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::process::Command;

use crate::accounts;
use crate::command;
use crate::error::TemplateError;
use crate::progress::Progress;
use crate::sources;

const SUITE: &str = "bookworm";
const PACKAGES: &str = "bash,coreutils,curl,git,python3,python-is-python3,python3-pip,ca-certificates,procps,iproute2,sudo";

pub(crate) async fn build(rootfs: &Path, progress: &Progress) -> Result<(), TemplateError> {
    let mirror = sources::debian_mirror(SUITE)?;
    progress
        .line(format!(
            "mmdebstrap {SUITE} minbase from {mirror} (takes ~20 s)"
        ))
        .await;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "mmdebstrap"])
        .arg("--variant=minbase")
        .arg(format!("--include={PACKAGES}"))
        .arg(SUITE)
        .arg(rootfs)
        .arg(&mirror)
        .env("LC_ALL", "C.UTF-8");
    command::run(cmd, progress).await?;

    progress
        .line("adding user `user` with passwordless sudo")
        .await;
    let rootfs = rootfs.to_path_buf();
    tokio::task::spawn_blocking(move || finish(&rootfs))
        .await
        .map_err(|e| {
            TemplateError::io("finish root filesystem in", "a worker thread")(io::Error::other(e))
        })??;
    progress.line("root filesystem complete").await;
    Ok(())
}

fn finish(rootfs: &Path) -> Result<(), TemplateError> {
    accounts::add(rootfs, &accounts::USER)?;

    let sudoers_d = rootfs.join("etc/sudoers.d");
    fs::create_dir_all(&sudoers_d).map_err(TemplateError::io("create", &sudoers_d))?;
    let rule = sudoers_d.join("warren-user");
    let text = format!("{} ALL=(ALL:ALL) NOPASSWD:ALL\n", accounts::USER.name);
    fs::write(&rule, text).map_err(TemplateError::io("write", &rule))?;
    fs::set_permissions(&rule, fs::Permissions::from_mode(0o440))
        .map_err(TemplateError::io("set permissions of", &rule))?;

    let tmp = rootfs.join("tmp");
    fs::create_dir_all(&tmp).map_err(TemplateError::io("create", &tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))
        .map_err(TemplateError::io("set permissions of", &tmp))?;

    remove_files(&rootfs.join("var/cache/apt/archives"), |n| {
        n.ends_with(".deb")
    })?;
    remove_files(&rootfs.join("var/cache/apt"), |n| n.ends_with(".bin"))?;
    remove_files(&rootfs.join("var/lib/apt/lists"), |n| n != "lock")
}

/// Removes the regular files directly in `dir` whose name matches `pick`.
fn remove_files(dir: &Path, pick: impl Fn(&str) -> bool) -> Result<(), TemplateError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TemplateError::io("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(TemplateError::io("list", dir))?;
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && pick(&entry.file_name().to_string_lossy()) {
            let p = entry.path();
            fs::remove_file(&p).map_err(TemplateError::io("remove", &p))?;
        }
    }
    Ok(())
}
