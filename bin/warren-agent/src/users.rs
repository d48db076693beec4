//! Users and groups, read from the root filesystem's own `/etc/passwd` and
//! `/etc/group` (never NSS: the agent is a static binary).

use std::collections::HashMap;
use std::path::PathBuf;

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

/// Reads accounts from an `etc` directory on every lookup, so changes made
/// inside the sandbox (useradd) are seen at once.
#[derive(Debug, Clone)]
pub struct UserDb {
    etc: PathBuf,
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
        Self { etc: etc.into() }
    }

    fn read(&self, file: &str) -> Result<String, UserError> {
        let path = self.etc.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(UserError::Read { path, source }),
        }
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
    pub fn names(&self) -> Names {
        let passwd = self.read("passwd").unwrap_or_default();
        let group = self.read("group").unwrap_or_default();
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
}
