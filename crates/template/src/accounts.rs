//! Adds the sandbox user to a root filesystem by editing its account files
//! directly (no `chroot useradd`, so it works for any rootfs, even one
//! without the `passwd` package).
//!
//! Idempotent: an account that already exists with the same uid is left
//! alone; a different account holding the uid is an error. Account files
//! that are symlinks are refused, so a write can never land outside the
//! root filesystem.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, chown};
use std::path::Path;

use crate::error::TemplateError;

/// The user every command in a sandbox runs as by default.
pub const USER: Account = Account {
    name: "user",
    uid: 1000,
    gid: 1000,
    home: "/home/user",
    shell: "/bin/bash",
};

/// One login account with a primary group of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub home: &'static str,
    pub shell: &'static str,
}

/// Adds `acct` to `rootfs/etc/{passwd,group}` (and `shadow`/`gshadow` when
/// present), creates its home owned by it with the files of `/etc/skel`.
pub(crate) fn add(rootfs: &Path, acct: &Account) -> Result<(), TemplateError> {
    let etc = rootfs.join("etc");
    let a = acct;
    append_entry(
        &etc.join("passwd"),
        a.name,
        a.uid,
        2,
        &format!("{}:x:{}:{}::{}:{}", a.name, a.uid, a.gid, a.home, a.shell),
        true,
    )?;
    append_entry(
        &etc.join("group"),
        a.name,
        a.gid,
        2,
        &format!("{}:x:{}:", a.name, a.gid),
        true,
    )?;
    // `*`: no password login; sudo is passwordless where configured.
    let shadow = format!("{}:*::0:99999:7:::", a.name);
    append_entry(&etc.join("shadow"), a.name, 0, usize::MAX, &shadow, false)?;
    let gshadow = format!("{}:!::", a.name);
    append_entry(&etc.join("gshadow"), a.name, 0, usize::MAX, &gshadow, false)?;
    make_home(rootfs, a)
}

/// Appends `line` to the colon-separated `file` unless an entry for `name`
/// exists. `id_field` is the index of the numeric id checked for clashes
/// (`usize::MAX`: none). Missing files are created only when `create`.
fn append_entry(
    file: &Path,
    name: &str,
    id: u32,
    id_field: usize,
    line: &str,
    create: bool,
) -> Result<(), TemplateError> {
    let existing = match fs::symlink_metadata(file) {
        Ok(md) if md.is_file() => {
            fs::read_to_string(file).map_err(TemplateError::io("read", file))?
        }
        Ok(_) => {
            return Err(TemplateError::io("edit", file)(io::Error::other(
                "not a regular file",
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(TemplateError::io("inspect", file)(e)),
    };
    for entry in existing.lines() {
        let fields: Vec<&str> = entry.split(':').collect();
        let same_name = fields[0] == name;
        if id_field == usize::MAX {
            if same_name {
                return Ok(());
            }
            continue;
        }
        let same_id = fields.get(id_field).is_some_and(|f| f.parse() == Ok(id));
        match (same_name, same_id) {
            (true, true) => return Ok(()),
            (false, false) => {}
            _ => {
                return Err(TemplateError::io("edit", file)(io::Error::other(format!(
                    "entry `{entry}` clashes with account {name} (id {id})"
                ))));
            }
        }
    }
    let mode = if file.ends_with("shadow") || file.ends_with("gshadow") {
        0o640
    } else {
        0o644
    };
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .open(file)
        .map_err(TemplateError::io("open", file))?;
    let sep = if existing.is_empty() || existing.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    writeln!(f, "{sep}{line}").map_err(TemplateError::io("append to", file))
}

fn make_home(rootfs: &Path, a: &Account) -> Result<(), TemplateError> {
    let home = rootfs.join(a.home.trim_start_matches('/'));
    fs::create_dir_all(&home).map_err(TemplateError::io("create", &home))?;
    fs::set_permissions(&home, fs::Permissions::from_mode(0o755))
        .map_err(TemplateError::io("set permissions of", &home))?;
    chown(&home, Some(a.uid), Some(a.gid)).map_err(TemplateError::io("chown", &home))?;
    let skel = rootfs.join("etc/skel");
    let Ok(entries) = fs::read_dir(&skel) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(TemplateError::io("list", &skel))?;
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        let dest = home.join(entry.file_name());
        if !is_file || dest.exists() {
            continue;
        }
        fs::copy(entry.path(), &dest).map_err(TemplateError::io("copy into home", &dest))?;
        chown(&dest, Some(a.uid), Some(a.gid)).map_err(TemplateError::io("chown", &dest))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_once_and_keeps_existing_entries() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        fs::create_dir_all(etc.join("skel")).unwrap();
        fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh").unwrap();
        fs::write(etc.join("shadow"), "root:*::0:99999:7:::\n").unwrap();
        fs::write(etc.join("skel/.profile"), "# profile\n").unwrap();
        add(root.path(), &USER).unwrap();
        add(root.path(), &USER).unwrap();
        let passwd = fs::read_to_string(etc.join("passwd")).unwrap();
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/bash\n"
        );
        assert_eq!(
            fs::read_to_string(etc.join("group")).unwrap(),
            "user:x:1000:\n"
        );
        assert!(
            fs::read_to_string(etc.join("shadow"))
                .unwrap()
                .ends_with("\nuser:*::0:99999:7:::\n")
        );
        assert!(!etc.join("gshadow").exists());
        assert!(root.path().join("home/user/.profile").is_file());
    }

    #[test]
    fn refuses_a_uid_held_by_another_account() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::write(
            root.path().join("etc/passwd"),
            "bob:x:1000:1000::/home/bob:/bin/sh\n",
        )
        .unwrap();
        let err = add(root.path(), &USER).unwrap_err();
        let msg = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(msg.contains("clashes"), "{msg}");
    }

    #[test]
    fn refuses_symlinked_account_files() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("etc/passwd")).unwrap();
        assert!(add(root.path(), &USER).is_err());
        assert_eq!(fs::read_to_string(outside.path()).unwrap(), "");
    }
}
