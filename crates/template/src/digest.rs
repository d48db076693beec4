//! Content addresses of root filesystems: a version's id is the first
//! [`VERSION_LEN`](crate::reference::VERSION_LEN) hex digits of the
//! SHA-256 of a canonical listing of its tree.
//!
//! The listing walks the tree without following symlinks, in byte order of
//! names, and records for each entry its path relative to the root, its
//! type, permission bits (set-id and sticky included), owner and group, and
//! then the SHA-256 of a file's content, a symlink's target or a device's
//! number. Timestamps and inode numbers are left out, so two builds that
//! produce the same files produce the same version, wherever they ran.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::reference::VERSION_LEN;

/// The version id of the tree at `root`.
pub(crate) fn version_of(root: &Path) -> io::Result<String> {
    let mut listing = Sha256::new();
    walk(root, &mut Vec::new(), &mut listing)?;
    let full = hex::encode(listing.finalize());
    Ok(full[..VERSION_LEN].to_owned())
}

fn walk(dir: &Path, rel: &mut Vec<u8>, listing: &mut Sha256) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    for entry in entries {
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)?;
        let len = rel.len();
        rel.push(b'/');
        rel.extend_from_slice(entry.file_name().as_bytes());
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_file() {
            'f'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else {
            's'
        };
        listing.update((rel.len() as u64).to_le_bytes());
        listing.update(&rel[..]);
        listing.update(
            format!(
                "\0{kind} {:o} {} {}\0",
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid()
            )
            .as_bytes(),
        );
        match kind {
            'd' => walk(&path, rel, listing)?,
            'l' => listing.update(fs::read_link(&path)?.as_os_str().as_bytes()),
            'f' => listing.update(file_digest(&path)?),
            'c' | 'b' => listing.update(meta.rdev().to_le_bytes()),
            _ => {}
        }
        listing.update(b"\n");
        rel.truncate(len);
    }
    Ok(())
}

fn file_digest(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hash.finalize().into());
        }
        hash.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/hostname"), "box\n").unwrap();
        symlink("/etc/hostname", root.join("name")).unwrap();
    }

    #[test]
    fn same_content_same_version_anything_else_another() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        tree(a.path());
        tree(b.path());
        let v = version_of(a.path()).unwrap();
        assert_eq!(v.len(), VERSION_LEN);
        assert_eq!(v, version_of(b.path()).unwrap());

        fs::write(b.path().join("etc/hostname"), "other\n").unwrap();
        let content = version_of(b.path()).unwrap();
        assert_ne!(v, content);

        fs::write(b.path().join("etc/hostname"), "box\n").unwrap();
        assert_eq!(v, version_of(b.path()).unwrap());
        fs::set_permissions(
            b.path().join("etc/hostname"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert_ne!(v, version_of(b.path()).unwrap());

        // Moving content between names is a change too.
        let c = tempfile::tempdir().unwrap();
        fs::create_dir_all(c.path().join("etc")).unwrap();
        fs::write(c.path().join("etc/hostnam"), "ebox\n").unwrap();
        symlink("/etc/hostname", c.path().join("name")).unwrap();
        assert_ne!(v, version_of(c.path()).unwrap());
    }
}
