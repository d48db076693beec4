//! The `tiny` recipe: a root filesystem made of the host's static busybox.
//!
//! Layout: `/bin/busybox` plus a symlink per applet in `/bin`; `/sbin`,
//! `/usr/bin` and `/usr/sbin` point at `/bin`; `/etc/passwd` and
//! `/etc/group` with `root` and `user` (1000, home `/home/user`, shell
//! `/bin/sh`); `/root`, `/tmp` (1777) and the mount points `/proc`, `/sys`,
//! `/dev`.
//!
//! There is no `/bin/bash`: Debian's busybox has no `bash` applet (called as
//! `bash` it answers "applet not found"), and a `bash` that is really ash
//! would lie to whatever checks for it.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::accounts::{self, Account};
use crate::error::TemplateError;
use crate::progress::Progress;

/// Where Debian's busybox-static puts its binary (before the merged-/usr alias).
const HOST_BUSYBOX: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];

/// `user`, but with busybox's shell.
const TINY_USER: Account = Account {
    shell: "/bin/sh",
    ..accounts::USER
};

pub(crate) async fn build(rootfs: &Path, progress: &Progress) -> Result<(), TemplateError> {
    let busybox = find_busybox()?;
    progress
        .line(format!("copying {} and its applets", busybox.display()))
        .await;
    let rootfs = rootfs.to_path_buf();
    tokio::task::spawn_blocking(move || build_blocking(&busybox, &rootfs))
        .await
        .map_err(|e| {
            TemplateError::io("build tiny root filesystem in", "a worker thread")(
                std::io::Error::other(e),
            )
        })?
}

fn find_busybox() -> Result<PathBuf, TemplateError> {
    let path = HOST_BUSYBOX
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| TemplateError::Busybox {
            path: PathBuf::from(HOST_BUSYBOX[0]),
            reason: "it does not exist".into(),
        })?;
    let mut head = Vec::new();
    fs::File::open(&path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(TemplateError::io("read", &path))?;
    if let Err(reason) = check_static_elf(&head) {
        return Err(TemplateError::Busybox { path, reason });
    }
    Ok(path)
}

/// A 64-bit little-endian ELF executable without a program interpreter.
fn check_static_elf(head: &[u8]) -> Result<(), String> {
    const PT_INTERP: u32 = 3;
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return Err("it is not a 64-bit little-endian ELF binary".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(head[0x20..0x28].try_into().unwrap_or([0; 8]));
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    let phoff = usize::try_from(phoff).map_err(|_| "its program headers are out of range")?;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let Some(p_type) = head.get(at..at + 4) else {
            return Err("its program headers are truncated".into());
        };
        if u32::from_le_bytes([p_type[0], p_type[1], p_type[2], p_type[3]]) == PT_INTERP {
            return Err("it is dynamically linked".into());
        }
    }
    Ok(())
}

fn build_blocking(busybox: &Path, rootfs: &Path) -> Result<(), TemplateError> {
    let mkdir = |rel: &str, mode: u32| -> Result<(), TemplateError> {
        let p = rootfs.join(rel);
        fs::create_dir_all(&p).map_err(TemplateError::io("create", &p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .map_err(TemplateError::io("set permissions of", &p))
    };
    mkdir("", 0o755)?;
    for d in ["bin", "etc", "usr", "proc", "sys", "dev", "home", "var"] {
        mkdir(d, 0o755)?;
    }
    mkdir("root", 0o700)?;
    mkdir("tmp", 0o1777)?;
    mkdir("var/tmp", 0o1777)?;
    for (link, target) in [
        ("sbin", "bin"),
        ("usr/bin", "../bin"),
        ("usr/sbin", "../bin"),
    ] {
        let p = rootfs.join(link);
        symlink(target, &p).map_err(TemplateError::io("create symlink", &p))?;
    }

    let dest = rootfs.join("bin/busybox");
    fs::copy(busybox, &dest).map_err(TemplateError::io("copy busybox to", &dest))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
        .map_err(TemplateError::io("set permissions of", &dest))?;
    for applet in applets(busybox)? {
        let p = rootfs.join("bin").join(&applet);
        symlink("busybox", &p).map_err(TemplateError::io("create symlink", &p))?;
    }

    let etc = rootfs.join("etc");
    let write = |name: &str, text: &str, mode: u32| -> Result<(), TemplateError> {
        let p = etc.join(name);
        fs::write(&p, text).map_err(TemplateError::io("write", &p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .map_err(TemplateError::io("set permissions of", &p))
    };
    write("passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644)?;
    write("group", "root:x:0:\n", 0o644)?;
    write("shadow", "root:*::0:99999:7:::\n", 0o640)?;
    write("hostname", "sandbox\n", 0o644)?;
    accounts::add(rootfs, &TINY_USER)
}

/// The applet names of the host busybox (`busybox --list`), validated as
/// plain file names.
fn applets(busybox: &Path) -> Result<Vec<String>, TemplateError> {
    let out = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|source| TemplateError::Spawn {
            program: busybox.display().to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(TemplateError::Busybox {
            path: busybox.to_path_buf(),
            reason: format!("`busybox --list` failed ({})", out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| {
            !a.is_empty()
                && *a != "busybox"
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"[-_.".contains(&b))
                && !a.starts_with('.')
        })
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf_and_dynamic_binaries() {
        assert!(check_static_elf(b"#!/bin/sh\n").is_err());
        let sh = fs::read("/bin/sh").unwrap();
        assert_eq!(
            check_static_elf(&sh).unwrap_err(),
            "it is dynamically linked"
        );
    }
}
