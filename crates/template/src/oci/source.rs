//! Where an image's files come from: an OCI layout directory, or a tar
//! archive (`oci-archive`, `docker-archive`) read in place.
//!
//! An archive is indexed once: the position and size of every regular file
//! whose path is plain (no `..`, no absolute path). Later reads seek to that
//! position, so nothing is unpacked twice and no name in the archive ever
//! becomes a host path. A directory is only read below itself, by names
//! Warren builds (`index.json`, `blobs/sha256/<hex>`), never following a
//! symlink out of it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::budget::{self, Budget};
use super::error::OciError;
use super::whiteout;

/// Most files an archive's index holds.
const MAX_FILES: usize = 100_000;

/// An image's files by path.
pub(crate) enum Files {
    Dir(PathBuf),
    Archive {
        path: PathBuf,
        index: HashMap<String, (u64, u64)>,
    },
}

impl Files {
    pub(crate) fn dir(path: &Path) -> Self {
        Self::Dir(path.to_path_buf())
    }

    /// Indexes the tar archive at `path`.
    pub(crate) fn archive(path: &Path) -> Result<Self, OciError> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(OciError::io(format!("open {shown}")))?;
        let (file, budget) = Budget::new(file);
        let mut archive = tar::Archive::new(file);
        let mut index = HashMap::new();
        let entries = archive
            .entries_with_seek()
            .map_err(OciError::io(format!("read {shown}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                OciError::invalid(format!("{shown} is not a readable tar archive: {e}"))
            })?;
            budget.set(budget::for_entry(entry.size()));
            let kind = entry.header().entry_type();
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                continue;
            }
            let raw = entry.path_bytes();
            let Ok(comps) = whiteout::components(&raw) else {
                continue;
            };
            let Ok(name) = String::from_utf8(comps.join(&b'/')) else {
                continue;
            };
            if index.len() >= MAX_FILES {
                return Err(OciError::Limit(format!(
                    "more than {MAX_FILES} files in the archive"
                )));
            }
            index.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(Self::Archive {
            path: path.to_path_buf(),
            index,
        })
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        match self {
            Self::Dir(dir) => std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_file()),
            Self::Archive { index, .. } => index.contains_key(name),
        }
    }

    /// Opens `name` (a relative path with plain components) and its size.
    pub(crate) fn open(&self, name: &str) -> Result<(Box<dyn Read + Send>, u64), OciError> {
        let comps = whiteout::components(name.as_bytes()).map_err(OciError::invalid)?;
        match self {
            Self::Dir(dir) => {
                let mut path = dir.clone();
                for c in comps {
                    path.push(std::ffi::OsStr::new(std::str::from_utf8(c).unwrap_or("?")));
                }
                let md = std::fs::symlink_metadata(&path)
                    .map_err(|_| OciError::invalid(format!("the image has no file {name}")))?;
                if !md.is_file() {
                    return Err(OciError::invalid(format!("{name} is not a regular file")));
                }
                let f = open_nofollow(&path)
                    .map_err(OciError::io(format!("open {}", path.display())))?;
                Ok((Box::new(f), md.len()))
            }
            Self::Archive { path, index } => {
                let &(at, len) = index
                    .get(name)
                    .ok_or_else(|| OciError::invalid(format!("the archive has no file {name}")))?;
                let mut f =
                    File::open(path).map_err(OciError::io(format!("open {}", path.display())))?;
                f.seek(SeekFrom::Start(at))
                    .map_err(OciError::io(format!("read {}", path.display())))?;
                Ok((Box::new(f.take(len)), len))
            }
        }
    }

    /// Reads `name` whole, refusing more than `max` bytes.
    pub(crate) fn read_small(&self, name: &str, max: u64) -> Result<Vec<u8>, OciError> {
        let (r, len) = self.open(name)?;
        if len > max {
            return Err(OciError::Limit(format!(
                "{name} is larger than {max} bytes"
            )));
        }
        let mut buf = Vec::with_capacity(len as usize);
        r.take(max)
            .read_to_end(&mut buf)
            .map_err(OciError::io(format!("read {name}")))?;
        Ok(buf)
    }
}

fn open_nofollow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}
