//! Entry paths and whiteouts of OCI layers.
//!
//! A path is split into plain names: empty and `.` components are dropped,
//! a leading `/` is ignored (paths are relative to the root), and `..` is
//! refused, as are over-long paths and names.
//!
//! Whiteouts (OCI image spec, "Whiteouts"): an entry `DIR/.wh.NAME` deletes
//! `DIR/NAME` from the layers below; `DIR/.wh..wh..opq` makes `DIR` opaque:
//! whatever lower layers put in it goes, what this layer puts in it stays.
//! Other `.wh..wh.` names are aufs bookkeeping and are ignored.

/// Longest entry path accepted (Linux `PATH_MAX`).
pub(crate) const MAX_PATH: usize = 4096;
/// Longest file name accepted (Linux `NAME_MAX`).
const MAX_NAME: usize = 255;

const PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
const META_PREFIX: &[u8] = b".wh..wh.";

/// What an entry's last path component says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Name<'a> {
    /// An ordinary file name.
    Plain,
    /// `.wh.NAME`: delete `NAME`.
    Whiteout(&'a [u8]),
    /// `.wh..wh..opq`: the directory is opaque.
    Opaque,
    /// Other aufs metadata; skipped.
    Meta,
}

/// The plain components of `raw`.
pub(crate) fn components(raw: &[u8]) -> Result<Vec<&[u8]>, String> {
    if raw.len() > MAX_PATH {
        return Err(format!("its path is longer than {MAX_PATH} bytes"));
    }
    let mut out = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("its path has a `..` component".into()),
            c if c.len() > MAX_NAME => {
                return Err(format!("a component is longer than {MAX_NAME} bytes"));
            }
            c if c.contains(&0) => return Err("its path holds a NUL byte".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Classifies a last path component.
pub(crate) fn classify(name: &[u8]) -> Result<Name<'_>, String> {
    if name == OPAQUE {
        return Ok(Name::Opaque);
    }
    if name.starts_with(META_PREFIX) {
        return Ok(Name::Meta);
    }
    match name.strip_prefix(PREFIX) {
        None => Ok(Name::Plain),
        Some(b"" | b"." | b"..") => Err("a whiteout names no file".into()),
        Some(target) => Ok(Name::Whiteout(target)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths_and_refuses_escapes() {
        assert_eq!(
            components(b"./a//b/./c/").unwrap(),
            vec![&b"a"[..], b"b", b"c"]
        );
        assert_eq!(
            components(b"/etc/passwd").unwrap(),
            vec![&b"etc"[..], b"passwd"]
        );
        assert!(components(b"./").unwrap().is_empty());
        assert!(components(b"a/../../x").unwrap_err().contains(".."));
        assert!(components(&vec![b'a'; 300]).is_err());
        assert!(components(&vec![b'a'; MAX_PATH + 1]).is_err());
    }

    #[test]
    fn classifies_whiteouts() {
        assert_eq!(classify(b"file").unwrap(), Name::Plain);
        assert_eq!(classify(b".wh.file").unwrap(), Name::Whiteout(b"file"));
        assert_eq!(classify(b".wh..wh..opq").unwrap(), Name::Opaque);
        assert_eq!(classify(b".wh..wh.plnk").unwrap(), Name::Meta);
        assert!(classify(b".wh...").is_err());
        assert!(classify(b".wh.").is_err());
    }
}
