//! File work with a user's credentials.
//!
//! The agent is root, but every file operation a request makes for a user
//! runs with that user's identity, so the kernel decides what it may do:
//! permission bits, supplementary groups, sticky directories, and symlinks
//! resolved with the user's rights. Root requests keep root's power.
//!
//! Protocol: [`as_user`] hands the work to a worker thread that holds the
//! identity. A worker takes its identity once, when it starts, and never
//! changes it: supplementary groups, then real/effective/saved gid, then
//! real/effective/saved uid, through the raw syscalls, which (unlike the
//! libc wrappers) change only the calling thread. With all three uids
//! non-zero the thread holds no capabilities. The switch is read back with
//! `getresuid`/`getresgid` and the work is refused if it did not take.
//! After a job the worker waits [`IDLE`] for another job of the same
//! identity, then ends; at most [`MAX_IDLE`] wait per identity, and a busy
//! identity gets more workers. Threads a worker starts (a watcher's inotify
//! loop) inherit its identity.
//!
//! Invariants: no file syscall for a request runs outside a worker of its
//! identity, except I/O on descriptors such a worker opened (the kernel
//! checked the access at open, as for any process); a worker only ever runs
//! work of the identity it took. `setfsuid`/`setfsgid` are not used: gVisor
//! does not implement them.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// How long a worker waits for its next job.
pub const IDLE: Duration = Duration::from_secs(10);
/// How many workers of one identity may wait at once.
pub const MAX_IDLE: usize = 4;

/// Work for a worker, told whether the worker holds its identity.
type Job = Box<dyn FnOnce(Result<(), AsUserError>) + Send>;

/// A waiting worker: its number and where to send its next job.
struct Waiting {
    worker: u64,
    jobs: Sender<Job>,
}

#[derive(Default)]
struct Pool {
    next: u64,
    idle: HashMap<Identity, Vec<Waiting>>,
}

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    POOL.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Runs `work` on a worker thread holding `who`'s credentials and returns
/// its result.
pub async fn as_user<T, F>(who: impl Into<Identity>, work: F) -> Result<T, AsUserError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let who = who.into();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |taken| {
        let _ = tx.send(taken.map(|()| work()));
    });
    dispatch(who, job)?;
    rx.await.map_err(|_| AsUserError::Aborted)?
}

/// Gives `job` to a waiting worker of `who`, else to a new one.
fn dispatch(who: Identity, job: Job) -> Result<(), AsUserError> {
    let waiting = pool().idle.get_mut(&who).and_then(Vec::pop);
    let job = match waiting {
        // A worker removed from the list always receives: it exits only
        // after taking itself off the list.
        Some(w) => match w.jobs.send(job) {
            Ok(()) => return Ok(()),
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    std::thread::Builder::new()
        .name("warren-fs-user".into())
        .spawn(move || match assume(&who) {
            Ok(()) => worker(who, job),
            Err(e) => job(Err(e)),
        })
        .map_err(AsUserError::Spawn)?;
    Ok(())
}

/// A worker's life once it holds `who`: run jobs, wait for more, end.
fn worker(who: Identity, first: Job) {
    let (jobs_tx, jobs) = mpsc::channel::<Job>();
    let mut job = first;
    loop {
        job(Ok(()));
        let me = {
            let mut pool = pool();
            pool.next += 1;
            let me = pool.next;
            let waiting = pool.idle.entry(who.clone()).or_default();
            if waiting.len() >= MAX_IDLE {
                return;
            }
            waiting.push(Waiting {
                worker: me,
                jobs: jobs_tx.clone(),
            });
            me
        };
        job = match jobs.recv_timeout(IDLE) {
            Ok(next) => next,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                let mut pool = pool();
                let waiting = pool.idle.entry(who.clone()).or_default();
                if let Some(i) = waiting.iter().position(|w| w.worker == me) {
                    waiting.swap_remove(i);
                    if waiting.is_empty() {
                        pool.idle.remove(&who);
                    }
                    return;
                }
                drop(pool);
                // Taken off the list by a dispatcher: its job is on the way.
                match jobs.recv() {
                    Ok(next) => next,
                    Err(_) => return,
                }
            }
        };
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(uid: u32, groups: &[u32]) -> Identity {
        Identity {
            uid,
            gid: uid,
            groups: groups.to_vec(),
        }
    }

    fn groups() -> Vec<u32> {
        let mut buf = vec![0 as libc::gid_t; 64];
        // SAFETY: `buf` holds 64 entries.
        let n = unsafe { libc::getgroups(64, buf.as_mut_ptr()) };
        buf.truncate(usize::try_from(n).unwrap());
        buf
    }

    #[tokio::test]
    async fn root_work_runs_with_the_identity_and_nothing_else_changes() {
        let who = ident(4242, &[4242, 4300]);
        let (uids, gids, grps) = as_user(who, || {
            let (u, g) = current();
            (u, g, groups())
        })
        .await
        .unwrap();
        assert_eq!((uids, gids), ([4242; 3], [4242; 3]));
        assert_eq!(grps, [4242, 4300]);
        assert_eq!(current(), ([0; 3], [0; 3]));
        let denied = as_user(ident(4242, &[4242]), || {
            std::fs::read_dir("/root").map(drop).unwrap_err().kind()
        })
        .await
        .unwrap();
        assert_eq!(denied, std::io::ErrorKind::PermissionDenied);
    }

    #[tokio::test]
    async fn root_a_worker_only_ever_runs_work_of_its_identity() {
        let mut threads: HashMap<u32, Vec<std::thread::ThreadId>> = HashMap::new();
        for i in 0..40 {
            let uid = 5000 + i % 3;
            let (seen, thread) = as_user(ident(uid, &[uid]), || {
                (current().0, std::thread::current().id())
            })
            .await
            .unwrap();
            assert_eq!(seen, [uid; 3]);
            threads.entry(uid).or_default().push(thread);
        }
        for (uid, ids) in &threads {
            for (other, other_ids) in &threads {
                if uid != other {
                    assert!(ids.iter().all(|t| !other_ids.contains(t)));
                }
            }
        }
    }

    #[tokio::test]
    async fn root_a_blocked_job_does_not_hold_up_others_of_the_same_user() {
        let who = ident(5100, &[5100]);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocked = tokio::spawn(as_user(who.clone(), move || rx.recv().is_ok()));
        as_user(who, move || tx.send(()).unwrap()).await.unwrap();
        assert!(blocked.await.unwrap().unwrap());
    }
}
