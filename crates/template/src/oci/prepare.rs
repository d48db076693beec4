//! What Warren adds to an imported root filesystem: the `user` account
//! (uid 1000, home `/home/user`, shell `/bin/bash` when the image has bash,
//! else `/bin/sh`), a `/tmp` (1777) when the image has none, and an empty
//! `/.warren` (the agent's mount point) in place of whatever the image had.
//!
//! The account code writes through ordinary paths, so first every directory
//! it touches (`etc`, `home`, `home/user`, `etc/skel`) is checked, from the
//! root's descriptor, to be a real directory or absent: an image whose
//! `/etc` is a symlink to the host's would otherwise have us write there.

use std::ffi::OsStr;
use std::path::Path;

use nix::sys::stat::{Mode, SFlag, fchmod};

use super::error::OciError;
use super::fsat::{self, WalkError};
use crate::accounts::{self, Account};

pub(crate) fn prepare(rootfs: &Path) -> Result<(), OciError> {
    let root = fsat::open_root(rootfs).map_err(OciError::io("open the root filesystem"))?;
    let refuse = |e: WalkError| match e {
        WalkError::Symlink(p) => OciError::invalid(format!(
            "the image's /{p} is a symlink; Warren adds its `user` account there and needs a real directory"
        )),
        WalkError::NotDir(p) => OciError::invalid(format!("the image's /{p} is not a directory")),
        WalkError::Io(e) => OciError::io("check the root filesystem")(e),
    };
    fsat::walk(&root, &[b"etc"], true).map_err(refuse)?;
    fsat::walk(&root, &[b"etc", b"skel"], false).map_err(refuse)?;
    fsat::walk(&root, &[b"home", b"user"], true).map_err(refuse)?;
    if fsat::kind(&root, OsStr::new("tmp"))
        .map_err(OciError::io("check /tmp"))?
        .is_none()
        && let Some(tmp) = fsat::walk(&root, &[b"tmp"], true).map_err(refuse)?
    {
        fchmod(&tmp, Mode::from_bits_truncate(0o1777))
            .map_err(|e| OciError::io("chmod /tmp")(e.into()))?;
    }
    // The runtime mounts the agent at /.warren/agent: whatever the image
    // has there gives way to an empty directory.
    let warren = OsStr::new(".warren");
    fsat::remove(&root, warren).map_err(OciError::io("remove the image's /.warren"))?;
    fsat::walk(&root, &[b".warren"], true).map_err(refuse)?;
    let has_bash = [&[&b"bin"[..]][..], &[b"usr", b"bin"]].iter().any(|dir| {
        matches!(fsat::walk(&root, dir, false), Ok(Some(d))
            if matches!(fsat::kind(&d, OsStr::new("bash")), Ok(Some(k)) if k != SFlag::S_IFDIR))
    });
    let user = Account {
        shell: if has_bash { "/bin/bash" } else { "/bin/sh" },
        ..accounts::USER
    };
    accounts::add(rootfs, &user).map_err(|e| {
        OciError::invalid(format!(
            "could not add the `user` account: {}",
            crate::error::chain(&e)
        ))
    })
}
