//! Path resolution for a user: `~` is the user's home, relative paths start
//! at the working directory, `.` and `..` are folded lexically. Symlinks are
//! followed by the kernel, as they would be for any process in the sandbox.

use std::path::{Component, Path, PathBuf};

use warren_envd::ConnectError;

use crate::users::User;

/// Resolves `path` for `user`; `workdir` anchors relative paths.
pub fn resolve(path: &str, user: &User, workdir: &Path) -> Result<PathBuf, ConnectError> {
    if path.is_empty() {
        return Err(ConnectError::invalid_argument("path is empty"));
    }
    if path.contains('\0') {
        return Err(ConnectError::invalid_argument("path contains a NUL byte"));
    }
    let joined = if path == "~" {
        user.home.clone()
    } else if let Some(rest) = path.strip_prefix("~/") {
        user.home.join(rest)
    } else {
        workdir.join(path)
    };
    Ok(normalize(&joined))
}

/// Folds `.` and `..` without touching the filesystem; never climbs above `/`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            name: "u".into(),
            uid: 1,
            gid: 1,
            home: "/home/u".into(),
            shell: String::new(),
            groups: vec![],
        }
    }

    #[test]
    fn resolves_relative_home_and_dots() {
        let wd = Path::new("/work");
        assert_eq!(
            resolve("a/b", &user(), wd).unwrap(),
            PathBuf::from("/work/a/b")
        );
        assert_eq!(
            resolve("~/x", &user(), wd).unwrap(),
            PathBuf::from("/home/u/x")
        );
        assert_eq!(resolve("~", &user(), wd).unwrap(), PathBuf::from("/home/u"));
        assert_eq!(
            resolve("/a/./b/../c", &user(), wd).unwrap(),
            PathBuf::from("/a/c")
        );
        assert_eq!(
            resolve("../../../../etc", &user(), wd).unwrap(),
            PathBuf::from("/etc")
        );
        assert!(resolve("", &user(), wd).is_err());
        assert!(resolve("a\0b", &user(), wd).is_err());
    }
}
