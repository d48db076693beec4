//! One lstat walk of a tree: what each entry is, enough to tell whether a
//! step changed it. The tree may be changing under hostile hands (a build
//! sandbox's leftover process), so every directory is reached from the
//! root's descriptor without following a symlink ([`crate::oci::fsat`])
//! and entries are read relative to it: a directory swapped for a symlink
//! ends the walk with an error, never a walk of what it points at.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{AtFlags, readlinkat};
use nix::sys::stat::fstatat;

use crate::oci::fsat::{self, WalkError};

/// An entry as the walk saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub ino: u64,
    pub nlink: u64,
    pub target: Option<PathBuf>,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// Every entry below a root (not the root), by path relative to it; a
/// parent sorts before its children.
#[derive(Debug, Default, Clone)]
pub struct Tree {
    pub entries: BTreeMap<PathBuf, Entry>,
}

/// Walks `root`, depth first, holding a descriptor for each directory on
/// the way down (a tree too deep for the process's descriptors is an
/// error).
pub fn walk(root: &Path) -> io::Result<Tree> {
    let root = fsat::open_root(root)?;
    let mut tree = Tree::default();
    let names = list(&root)?;
    let mut stack = vec![(root, PathBuf::new(), names.into_iter())];
    while let Some((dir, rel, names)) = stack.last_mut() {
        let Some(name) = names.next() else {
            stack.pop();
            continue;
        };
        let path = rel.join(&name);
        let st = fstatat(&*dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let kind = st.st_mode & libc::S_IFMT;
        let target = if kind == libc::S_IFLNK {
            Some(PathBuf::from(readlinkat(&*dir, name.as_os_str())?))
        } else {
            None
        };
        tree.entries.insert(
            path.clone(),
            Entry {
                mode: st.st_mode,
                uid: st.st_uid,
                gid: st.st_gid,
                size: u64::try_from(st.st_size).unwrap_or(0),
                mtime: (st.st_mtime, st.st_mtime_nsec),
                ctime: (st.st_ctime, st.st_ctime_nsec),
                ino: st.st_ino,
                nlink: st.st_nlink,
                target,
            },
        );
        if kind == libc::S_IFDIR {
            let child = open_dir(&*dir, Path::new(&name))?;
            let names = list(&child)?;
            stack.push((child, path, names.into_iter()));
        }
    }
    Ok(tree)
}

/// The names in the directory `dir`.
fn list(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    // The descriptor's own directory, named through procfs: no path walk.
    fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?
        .map(|item| item.map(|i| i.file_name()))
        .collect()
}

/// The directory `rel` below `root`, reached without following symlinks.
pub(crate) fn open_dir(root: &OwnedFd, rel: &Path) -> io::Result<OwnedFd> {
    let comps: Vec<&[u8]> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes()),
            _ => None,
        })
        .collect();
    match fsat::walk(root, &comps, false) {
        Ok(Some(fd)) => Ok(fd),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} went away", rel.display()),
        )),
        Err(WalkError::Io(e)) => Err(e),
        Err(WalkError::Symlink(p) | WalkError::NotDir(p)) => {
            Err(io::Error::other(format!("{p} is no longer a directory")))
        }
    }
}

/// `name` of `path`, for opening it relative to its directory.
pub(crate) fn name_of(path: &Path) -> &OsStr {
    path.file_name().unwrap_or_default()
}
