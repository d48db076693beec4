//! File-system operations relative to an open directory that never follow a
//! symlink.
//!
//! Every path an image names is resolved one component at a time from the
//! root filesystem's directory descriptor with `openat(O_DIRECTORY |
//! O_NOFOLLOW)`: a component that is a symlink (or not a directory) stops
//! the walk, so nothing an image writes can land outside its root, whatever
//! symlinks earlier entries made. Removal works the same way and unlinks
//! symlinks themselves, never what they point at.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// Why a walk stopped.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// This prefix of the path is a symlink.
    Symlink(String),
    /// This prefix of the path exists and is not a directory.
    NotDir(String),
    Io(io::Error),
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

/// Opens the directory `path` itself (not following a final symlink).
pub(crate) fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(path, DIR_FLAGS, Mode::empty())?)
}

/// Opens the directory `comps` below `root`. Missing directories are made
/// (mode 0755, owned by the caller) when `create`, otherwise `Ok(None)`.
pub(crate) fn walk(
    root: &OwnedFd,
    comps: &[&[u8]],
    create: bool,
) -> Result<Option<OwnedFd>, WalkError> {
    let mut cur =
        openat(root, ".", DIR_FLAGS, Mode::empty()).map_err(|e| WalkError::Io(e.into()))?;
    for (i, comp) in comps.iter().enumerate() {
        let name = OsStr::from_bytes(comp);
        let prefix = || String::from_utf8_lossy(&comps[..=i].join(&b'/')).into_owned();
        let next = match openat(&cur, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create => {
                match mkdirat(&cur, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(WalkError::Io(e.into())),
                }
                openat(&cur, name, DIR_FLAGS, Mode::empty())
                    .map_err(|e| classify(&cur, name, e, prefix()))?
            }
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(classify(&cur, name, e, prefix())),
        };
        cur = next;
    }
    Ok(Some(cur))
}

fn classify(dir: &OwnedFd, name: &OsStr, e: Errno, prefix: String) -> WalkError {
    match e {
        Errno::ELOOP | Errno::ENOTDIR => match kind(dir, name) {
            Ok(Some(k)) if k == SFlag::S_IFLNK => WalkError::Symlink(prefix),
            _ => WalkError::NotDir(prefix),
        },
        e => WalkError::Io(e.into()),
    }
}

/// The file type of `name` in `dir` (not following a symlink); `None` if absent.
pub(crate) fn kind(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<SFlag>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(
            st.st_mode & SFlag::S_IFMT.bits(),
        ))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` from `dir`, with everything below it if it is a
/// directory; absent is fine. Symlinks are unlinked, never followed.
pub(crate) fn remove(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    match kind(dir, name)? {
        None => Ok(()),
        Some(k) if k == SFlag::S_IFDIR => {
            let child = openat(dir, name, DIR_FLAGS, Mode::empty())?;
            empty(&child, |_| false)?;
            Ok(unlinkat(dir, name, UnlinkatFlags::RemoveDir)?)
        }
        Some(_) => Ok(unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?),
    }
}

/// Removes every entry of `dir` for which `keep` is false.
pub(crate) fn empty(dir: &OwnedFd, keep: impl Fn(&[u8]) -> bool) -> io::Result<()> {
    // The descriptor's own directory, named through procfs: no path walk.
    let listing = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
    let mut names: Vec<Vec<u8>> = Vec::new();
    for entry in listing {
        let name = entry?.file_name();
        if !keep(name.as_bytes()) {
            names.push(name.as_bytes().to_vec());
        }
    }
    for name in names {
        remove(dir, OsStr::from_bytes(&name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn walks_refuse_symlinks_and_removal_does_not_follow_them() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("keep"), "x").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        fs::write(root.path().join("file"), "").unwrap();
        let fd = open_root(root.path()).unwrap();
        assert!(
            matches!(walk(&fd, &[b"link", b"x"], true), Err(WalkError::Symlink(p)) if p == "link")
        );
        assert!(
            matches!(walk(&fd, &[b"file", b"x"], true), Err(WalkError::NotDir(p)) if p == "file")
        );
        assert!(walk(&fd, &[b"a", b"b"], false).unwrap().is_none());
        assert!(walk(&fd, &[b"a", b"b"], true).unwrap().is_some());
        assert!(root.path().join("a/b").is_dir());
        empty(&fd, |_| false).unwrap();
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
        assert!(outside.path().join("keep").exists());
    }
}
