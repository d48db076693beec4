//! A path inside a volume, as the content API is given it.
//!
//! The API's paths read as absolute (`/dir/file`) with the volume's own
//! directory as `/`; a path without the leading `/` means the same. A
//! valid path is a list of plain names: `.` and empty parts are dropped,
//! while `..`, NUL, a name over [`NAME_MAX`] bytes or a path over
//! [`PATH_MAX`] bytes is refused. The names are then resolved by the
//! kernel beneath the volume's directory fd (`fs`), never joined to a host
//! path.

use std::ffi::CString;

use super::ContentError;

/// Longest path the API takes, in bytes (Linux's `PATH_MAX`).
pub const PATH_MAX: usize = 4096;
/// Longest name of one file or directory, in bytes.
pub const NAME_MAX: usize = 255;

/// A validated path inside a volume: its names, root first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumePath {
    names: Vec<String>,
}

impl VolumePath {
    pub fn parse(raw: &str) -> Result<Self, ContentError> {
        if raw.is_empty() {
            return Err(ContentError::BadPath("is empty".into()));
        }
        if raw.len() > PATH_MAX {
            return Err(ContentError::BadPath(format!("is over {PATH_MAX} bytes")));
        }
        if raw.contains('\0') {
            return Err(ContentError::BadPath("contains a NUL byte".into()));
        }
        let mut names = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(ContentError::BadPath(
                        "contains '..': paths stay inside the volume".into(),
                    ));
                }
                name if name.len() > NAME_MAX => {
                    return Err(ContentError::BadPath(format!(
                        "has a name over {NAME_MAX} bytes"
                    )));
                }
                name => names.push(name.to_owned()),
            }
        }
        Ok(Self { names })
    }

    /// The volume's own directory.
    pub fn root() -> Self {
        Self { names: Vec::new() }
    }

    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    /// The path below this one named `name` (a name read from a directory).
    pub fn child(&self, name: &str) -> Self {
        let mut names = self.names.clone();
        names.push(name.to_owned());
        Self { names }
    }

    /// The last name; `None` for the root.
    pub fn name(&self) -> Option<&str> {
        self.names.last().map(String::as_str)
    }

    /// The parent's names, relative, as the kernel resolves them beneath
    /// the volume's fd (`.` for the root), and the last name.
    pub fn split(&self) -> Option<(CString, CString)> {
        let (last, parent) = self.names.split_last()?;
        Some((relative(parent), cstring(last)))
    }

    /// The whole path, relative, for resolution beneath the volume's fd.
    pub fn relative(&self) -> CString {
        relative(&self.names)
    }

    /// The parent of every prefix, shortest first: `a`, `a/b` for `a/b/c`.
    pub fn ancestors(&self) -> impl Iterator<Item = Self> + '_ {
        (1..self.names.len()).map(|n| Self {
            names: self.names[..n].to_vec(),
        })
    }
}

impl std::fmt::Display for VolumePath {
    /// As the API answers it: `/` and the names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}", self.names.join("/"))
    }
}

fn relative(names: &[String]) -> CString {
    if names.is_empty() {
        cstring(".")
    } else {
        cstring(&names.join("/"))
    }
}

/// Names hold no NUL: [`VolumePath::parse`] refused it.
fn cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_names_below_the_volume() {
        let p = VolumePath::parse("//a/./b/").unwrap();
        assert_eq!(p.to_string(), "/a/b");
        assert_eq!(p, VolumePath::parse("a/b").unwrap());
        let (parent, name) = p.split().unwrap();
        assert_eq!(
            (parent.to_str().unwrap(), name.to_str().unwrap()),
            ("a", "b")
        );
        assert!(VolumePath::parse("/").unwrap().is_root());
        assert_eq!(VolumePath::root().relative().to_str().unwrap(), ".");
        let deep = VolumePath::parse("/x/y/z").unwrap();
        let up: Vec<String> = deep.ancestors().map(|a| a.to_string()).collect();
        assert_eq!(up, ["/x", "/x/y"]);
    }

    #[test]
    fn hostile_paths_are_refused() {
        let long_name = "n".repeat(NAME_MAX + 1);
        let long_path = "/d".repeat(PATH_MAX);
        for bad in ["", "..", "/a/../b", "/..", "a\0b", &long_name, &long_path] {
            assert!(
                matches!(VolumePath::parse(bad), Err(ContentError::BadPath(_))),
                "{bad:?} accepted"
            );
        }
    }
}
