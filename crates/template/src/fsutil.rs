//! File-system helpers for build directories.
//!
//! [`remove_tree`] is what cleans up after crashed builds. A killed
//! `mmdebstrap` could in principle leave `/proc`, `/sys` or `/dev` mounted
//! inside its target, and a naive recursive delete would then walk into the
//! host's devices. So it first detaches every mount below the tree, then
//! deletes without ever crossing onto another file system.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Removes `path` and everything below it; absent paths are fine.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !md.is_dir() {
        return fs::remove_file(path);
    }
    detach_mounts_below(path)?;
    remove_on_device(path, md.dev())
}

fn remove_on_device(path: &Path, dev: u64) -> io::Result<()> {
    let md = fs::symlink_metadata(path)?;
    if !md.is_dir() {
        return fs::remove_file(path);
    }
    if md.dev() != dev {
        return Err(io::Error::other(format!(
            "refusing to delete {}: it is another file system mounted inside a build directory; unmount it first",
            path.display()
        )));
    }
    for entry in fs::read_dir(path)? {
        remove_on_device(&entry?.path(), dev)?;
    }
    fs::remove_dir(path)
}

/// Lazily unmounts every mount point strictly below `root`, deepest first.
fn detach_mounts_below(root: &Path) -> io::Result<()> {
    let root = fs::canonicalize(root)?;
    let mountinfo = match fs::read_to_string("/proc/self/mountinfo") {
        Ok(t) => t,
        // Without /proc we cannot see mounts; remove_on_device still refuses
        // to cross them.
        Err(_) => return Ok(()),
    };
    let mut below: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount_path(p)))
        .filter(|p| p != &root && p.starts_with(&root))
        .collect();
    below.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in below {
        match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
            // EINVAL: no longer a mount point (a parent went first).
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(io::Error::other(format!(
                    "could not unmount {} left by a crashed build: {e}",
                    p.display()
                )));
            }
        }
    }
    Ok(())
}

/// Mount points in mountinfo escape space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Disk usage of a tree in bytes (allocated blocks; hard links counted once;
/// symlinks not followed; other file systems not entered).
pub(crate) fn disk_usage(root: &Path) -> io::Result<u64> {
    let dev = fs::symlink_metadata(root)?.dev();
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = fs::symlink_metadata(&p)?;
        if md.nlink() > 1 && !md.is_dir() && !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        total = total.saturating_add(md.blocks().saturating_mul(512));
        if md.is_dir() && md.dev() == dev {
            for entry in fs::read_dir(&p)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_octal_sequences() {
        assert_eq!(unescape_mount_path("/a\\040b"), "/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
        assert_eq!(unescape_mount_path("/end\\04"), "/end\\04");
    }

    #[test]
    fn removes_trees_without_following_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("keep"), "x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        fs::create_dir_all(t.join("a/b")).unwrap();
        fs::write(t.join("a/b/f"), "data").unwrap();
        std::os::unix::fs::symlink(outside.path(), t.join("a/link")).unwrap();
        remove_tree(&t).unwrap();
        assert!(!t.exists());
        assert!(outside.path().join("keep").exists());
        remove_tree(&t).unwrap();
    }

    #[test]
    fn counts_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), vec![1u8; 64 * 1024]).unwrap();
        let one = disk_usage(dir.path()).unwrap();
        fs::hard_link(dir.path().join("f"), dir.path().join("g")).unwrap();
        assert_eq!(disk_usage(dir.path()).unwrap(), one);
        assert!(one >= 64 * 1024);
    }
}
