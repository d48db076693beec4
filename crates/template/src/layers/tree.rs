//! One lstat walk of a tree: what each entry is, enough to tell whether a
//! step changed it. Symlinks are never followed.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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

/// Walks `root`.
pub fn walk(root: &Path) -> io::Result<Tree> {
    let mut tree = Tree::default();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        for item in fs::read_dir(root.join(&rel))? {
            let item = item?;
            let path = rel.join(item.file_name());
            let meta = item.metadata()?; // lstat: DirEntry does not follow
            let target = if meta.file_type().is_symlink() {
                Some(fs::read_link(root.join(&path))?)
            } else {
                None
            };
            let entry = Entry {
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                size: meta.size(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                ctime: (meta.ctime(), meta.ctime_nsec()),
                ino: meta.ino(),
                nlink: meta.nlink(),
                target,
            };
            if entry.is_dir() {
                dirs.push(path.clone());
            }
            tree.entries.insert(path, entry);
        }
    }
    Ok(tree)
}
