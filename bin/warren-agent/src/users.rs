//! Users and groups, read from the root filesystem's own `/etc/passwd` and
//! `/etc/group` (never NSS: the agent is a static binary).
//!
//! Every lookup sees the files as they are now (a `useradd` inside the
//! sandbox counts at once), but reads them only when they changed: each
//! file's text is kept with its [`Stamp`] (device, inode, size, modification
//! and change times), and a lookup whose `stat` finds the same stamp uses the
//! kept text. Every command and file call resolves its user, and opening and
//! reading two files under gVisor costs far more than two `stat`s. The stamp
//! is taken before the read, so a change racing the read leaves an older
//! stamp with the newer text, and the next lookup reads again.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user {0:?} does not exist in /etc/passwd")]
    Unknown(String),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: String,
    /// Supplementary groups, the primary group included.
    pub groups: Vec<u32>,
}

/// Reads accounts from an `etc` directory, checking at every lookup that
/// the files did not change (see the module docs).
#[derive(Debug, Clone)]
pub struct UserDb {
    etc: PathBuf,
    kept: Arc<Mutex<Kept>>,
}

/// The text last read of each file, with the stamp it was read under.
type Kept = HashMap<&'static str, (Stamp, Arc<str>)>;

/// One version of a file: replacing it (a new inode) or editing it in
/// place (size, modification or change time) gives another stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
    shell: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
            shell: f[6],
        })
    })
}

/// `(name, gid, members)` of each group line.
fn group_entries(text: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        let members = f[3].split(',').filter(|m| !m.is_empty()).collect();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

impl UserDb {
    pub fn new(etc: impl Into<PathBuf>) -> Self {
        Self {
            etc: etc.into(),
            kept: Arc::default(),
        }
    }

    /// The text of `file` as it is now; a missing file reads as empty.
    fn read(&self, file: &'static str) -> Result<Arc<str>, UserError> {
        let path = self.etc.join(file);
        let failed = |path, source| UserError::Read { path, source };
        let stamp = match std::fs::metadata(&path) {
            Ok(m) => Stamp::of(&m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Arc::from("")),
            Err(e) => return Err(failed(path, e)),
        };
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, text)) = kept.get(file)
            && *at == stamp
        {
            return Ok(text.clone());
        }
        let text: Arc<str> = match std::fs::read_to_string(&path) {
            Ok(text) => Arc::from(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Arc::from(""),
            Err(e) => return Err(failed(path, e)),
        };
        kept.insert(file, (stamp, text.clone()));
        Ok(text)
    }

    /// Looks up a user by name.
    pub fn lookup(&self, name: &str) -> Result<User, UserError> {
        let passwd = self.read("passwd")?;
        let entry = passwd_entries(&passwd)
            .find(|e| e.name == name)
            .ok_or_else(|| UserError::Unknown(name.to_string()))?;
        let groups_text = self.read("group")?;
        let mut groups = vec![entry.gid];
        for (_, gid, members) in group_entries(&groups_text) {
            if members.contains(&name) && !groups.contains(&gid) {
                groups.push(gid);
            }
        }
        let home = if entry.home.is_empty() {
            "/"
        } else {
            entry.home
        };
        Ok(User {
            name: entry.name.to_string(),
            uid: entry.uid,
            gid: entry.gid,
            home: PathBuf::from(home),
            shell: entry.shell.to_string(),
            groups,
        })
    }

    pub fn exists(&self, name: &str) -> bool {
        self.lookup(name).is_ok()
    }

    /// Maps of uid → user name and gid → group name.
    /// The directory the accounts are read from.
    pub fn etc(&self) -> &Path {
        &self.etc
    }

    pub fn names(&self) -> Names {
        let passwd = self.read("passwd").unwrap_or_else(|_| Arc::from(""));
        let group = self.read("group").unwrap_or_else(|_| Arc::from(""));
        Names {
            users: passwd_entries(&passwd)
                .map(|e| (e.uid, e.name.to_string()))
                .collect(),
            groups: group_entries(&group)
                .map(|(n, gid, _)| (gid, n.to_string()))
                .collect(),
        }
    }
}

/// Id-to-name maps for listing owners.
#[derive(Debug, Default)]
pub struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    pub fn user(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }
    pub fn group(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("passwd"),
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken line\nuser:x:1000:1000::/home/user:/bin/bash\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("group"),
            "root:x:0:\nuser:x:1000:\nsudo:x:27:user,other\nbad:x:zz:user\n",
        )
        .unwrap();
        let db = UserDb::new(dir.path());
        let user = db.lookup("user").unwrap();
        assert_eq!((user.uid, user.gid), (1000, 1000));
        assert_eq!(user.home, PathBuf::from("/home/user"));
        assert_eq!(user.groups, vec![1000, 27]);
        assert!(matches!(db.lookup("nobody"), Err(UserError::Unknown(_))));
        let names = db.names();
        assert_eq!(names.user(1000), "user");
        assert_eq!(names.group(27), "sudo");
        assert_eq!(names.user(4242), "4242");
    }

    #[test]
    fn a_changed_file_is_read_again_at_the_next_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        let db = UserDb::new(dir.path());
        assert!(matches!(db.lookup("user"), Err(UserError::Unknown(_))));
        assert_eq!(db.lookup("root").unwrap().uid, 0);

        // Edited in place (same inode), as `>>` or an editor saving over it.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&passwd)
            .unwrap();
        std::io::Write::write_all(&mut f, b"user:x:1000:1000::/home/user:/bin/sh\n").unwrap();
        drop(f);
        assert_eq!(db.lookup("user").unwrap().uid, 1000);
        assert!(db.exists("user"));

        // Replaced by a new file, as useradd does (write, then rename).
        let next = dir.path().join("passwd+");
        std::fs::write(&next, "other:x:1001:1001::/home/other:/bin/sh\n").unwrap();
        std::fs::rename(&next, &passwd).unwrap();
        assert!(matches!(db.lookup("user"), Err(UserError::Unknown(_))));
        assert_eq!(db.lookup("other").unwrap().uid, 1001);

        // A group file appearing later counts too.
        std::fs::write(dir.path().join("group"), "staff:x:50:other\n").unwrap();
        assert_eq!(db.lookup("other").unwrap().groups, vec![1001, 50]);

        std::fs::remove_file(&passwd).unwrap();
        assert!(matches!(db.lookup("other"), Err(UserError::Unknown(_))));
    }
}
