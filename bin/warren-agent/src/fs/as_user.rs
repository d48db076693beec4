//! File work with a user's credentials.
//!
//! The agent is root, but every file operation a request makes for a user
//! runs with that user's identity, so the kernel decides what it may do:
//! permission bits, supplementary groups, sticky directories, and symlinks
//! resolved with the user's rights. Root requests keep root's power.
//!
//! Protocol: [`as_user`] starts a fresh OS thread that first takes the
//! identity — supplementary groups, then real/effective/saved gid, then
//! real/effective/saved uid — through the raw syscalls, which (unlike the
//! libc wrappers) change only the calling thread. With all three uids
//! non-zero the thread holds no capabilities. The switch is read back with
//! `getresuid`/`getresgid` and the work is refused if it did not take. The
//! thread then runs the work and ends, so the identity can never leak into
//! other work; threads it starts (a watcher's inotify loop) inherit it.
//!
//! Invariants: no file syscall for a request runs outside such a thread,
//! except I/O on descriptors the thread opened (the kernel checked the
//! access at open, as for any process). `setfsuid`/`setfsgid` are not used:
//! gVisor does not implement them.

use crate::users::User;

/// Why work could not run as its user.
#[derive(Debug, thiserror::Error)]
pub enum AsUserError {
    #[error("starting a file worker thread failed: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("taking the identity of uid {uid} gid {gid} failed: {source}")]
    Switch {
        uid: u32,
        gid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the identity of uid {uid} gid {gid} did not take (the kernel kept uid {got_uid} gid {got_gid})"
    )]
    NotTaken {
        uid: u32,
        gid: u32,
        got_uid: u32,
        got_gid: u32,
    },
    #[error("the file operation was aborted")]
    Aborted,
}

/// The credentials a worker thread takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl From<&User> for Identity {
    fn from(user: &User) -> Self {
        Self {
            uid: user.uid,
            gid: user.gid,
            groups: user.groups.clone(),
        }
    }
}

/// Runs `work` on a new thread holding `who`'s credentials and returns its
/// result.
pub async fn as_user<T, F>(who: impl Into<Identity>, work: F) -> Result<T, AsUserError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let who = who.into();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("warren-fs-user".into())
        .spawn(move || {
            let result = assume(&who).map(|()| work());
            let _ = tx.send(result);
        })
        .map_err(AsUserError::Spawn)?;
    rx.await.map_err(|_| AsUserError::Aborted)?
}

fn check(ret: libc::c_long, who: &Identity) -> Result<(), AsUserError> {
    if ret == 0 {
        Ok(())
    } else {
        Err(AsUserError::Switch {
            uid: who.uid,
            gid: who.gid,
            source: std::io::Error::last_os_error(),
        })
    }
}

/// Gives the calling thread, and only it, the identity `who`.
fn assume(who: &Identity) -> Result<(), AsUserError> {
    let groups: Vec<libc::gid_t> = who.groups.clone();
    // SAFETY: raw credential syscalls with valid arguments; `groups` outlives
    // the call. They change the calling thread's credentials only.
    unsafe {
        check(
            libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()),
            who,
        )?;
        check(
            libc::syscall(libc::SYS_setresgid, who.gid, who.gid, who.gid),
            who,
        )?;
        check(
            libc::syscall(libc::SYS_setresuid, who.uid, who.uid, who.uid),
            who,
        )?;
    }
    let (uids, gids) = current();
    if uids != [who.uid; 3] || gids != [who.gid; 3] {
        return Err(AsUserError::NotTaken {
            uid: who.uid,
            gid: who.gid,
            got_uid: uids[1],
            got_gid: gids[1],
        });
    }
    Ok(())
}

/// The calling thread's real, effective and saved uids and gids.
fn current() -> ([u32; 3], [u32; 3]) {
    let (mut r, mut e, mut s) = (0, 0, 0);
    let (mut rg, mut eg, mut sg) = (0, 0, 0);
    // SAFETY: the pointers are valid for the calls.
    unsafe {
        libc::syscall(
            libc::SYS_getresuid,
            &mut r as *mut libc::uid_t,
            &mut e as *mut libc::uid_t,
            &mut s as *mut libc::uid_t,
        );
        libc::syscall(
            libc::SYS_getresgid,
            &mut rg as *mut libc::gid_t,
            &mut eg as *mut libc::gid_t,
            &mut sg as *mut libc::gid_t,
        );
    }
    ([r, e, s], [rg, eg, sg])
}
