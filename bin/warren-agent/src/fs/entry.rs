//! Building [`EntryInfo`] from file metadata.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use warren_envd::filesystem::{EntryInfo, FileType};
use warren_envd::json::Timestamp;

use super::FsError;
use crate::users::Names;

fn kind_of(ft: std::fs::FileType) -> FileType {
    if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else {
        FileType::File
    }
}

/// `ls -l` style permissions, e.g. `drwxr-xr-x`.
pub fn permissions_string(mode: u32, kind: FileType) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        _ => '-',
    });
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, ch)) in bits.iter().enumerate() {
        let set = mode & bit != 0;
        let special = match i {
            2 if mode & 0o4000 != 0 => Some(if set { 's' } else { 'S' }),
            5 if mode & 0o2000 != 0 => Some(if set { 's' } else { 'S' }),
            8 if mode & 0o1000 != 0 => Some(if set { 't' } else { 'T' }),
            _ => None,
        };
        s.push(special.unwrap_or(if set { *ch } else { '-' }));
    }
    s
}

/// Describes `path` without following a final symlink; a symlink reports the
/// type of its target when that resolves, and as its target the absolute
/// path it finally leads to, every link on the way followed (envd's
/// `symlink_target`); a link that leads nowhere names itself.
pub fn entry_info(path: &Path, names: &Names) -> Result<EntryInfo, FsError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| FsError::new("stat", path, e))?;
    let is_symlink = meta.file_type().is_symlink();
    let (kind, symlink_target) = if is_symlink {
        let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let target = Some(target.display().to_string());
        let kind = std::fs::metadata(path)
            .map(|m| kind_of(m.file_type()))
            .unwrap_or(FileType::Symlink);
        (kind, target)
    } else {
        (kind_of(meta.file_type()), None)
    };
    let mode = meta.permissions().mode() & 0o7777;
    Ok(EntryInfo {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into()),
        kind,
        path: path.display().to_string(),
        size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        mode,
        permissions: permissions_string(mode, if is_symlink { FileType::Symlink } else { kind }),
        owner: names.user(meta.uid()),
        group: names.group(meta.gid()),
        modified_time: meta.modified().ok().map(Timestamp::from),
        symlink_target,
        metadata: if is_symlink {
            Default::default()
        } else {
            super::metadata::read(path)
        },
        is_symlink,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_strings() {
        assert_eq!(permissions_string(0o755, FileType::Directory), "drwxr-xr-x");
        assert_eq!(permissions_string(0o644, FileType::File), "-rw-r--r--");
        assert_eq!(permissions_string(0o4755, FileType::File), "-rwsr-xr-x");
        assert_eq!(
            permissions_string(0o1777, FileType::Directory),
            "drwxrwxrwt"
        );
    }
}
