//! Dropping epoll events of registrations that no longer exist.
//!
//! runsc 0.0~20240729 (systrap and ptrace alike) can report, after a
//! restore, events for TCP sockets that were removed from the epoll set
//! (`EPOLL_CTL_DEL`) before the checkpoint, whether or not they were then
//! closed. tokio uses the address of its per-resource `ScheduledIo` as the
//! epoll token and frees it once the resource is deregistered, so such an
//! event makes the I/O driver dereference freed memory: the restored agent
//! either spins for good on a garbage lock word or faults at a corrupted
//! pointer (`docs/runtime.md`, Checkpoint and restore). This module keeps
//! such events from ever reaching mio.
//!
//! Protocol: the binary is linked with `--wrap=epoll_ctl` and
//! `--wrap=epoll_wait` (`build.rs`), so the calls mio makes through libc
//! land here first.
//! - `epoll_ctl` keeps a table of what is registered, fd → token: `ADD` and
//!   `MOD` set the fd's token, `DEL` removes it, each only once the kernel
//!   accepted the call. The table lock is held across the call, so an event
//!   of a new registration is never filtered before the table knows it.
//! - `epoll_wait` keeps, in order, only the events whose token belongs to a
//!   registration in the table and returns how many are left (possibly 0,
//!   which mio reads as a wake-up without events).
//!
//! Invariants:
//! - every registration goes through libc's `epoll_ctl` (mio's do); an fd is
//!   registered with at most one epoll instance at a time. The table is
//!   keyed by fd because tokio registers through a `dup` of the instance it
//!   waits on, so instance fds name no instance.
//! - a token shared by several live registrations (mio's small constant
//!   tokens, a freed address reused by a newer registration) lets its events
//!   through: at worst a spurious wake-up, which mio and tokio tolerate.
//! - an fd closed without `DEL` (a whole epoll instance dropped) leaves its
//!   entry until the number is registered again; it only keeps its token's
//!   events flowing, as above.

use std::collections::BTreeMap;
use std::ffi::c_int;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

unsafe extern "C" {
    fn __real_epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut libc::epoll_event) -> c_int;
    fn __real_epoll_wait(
        epfd: c_int,
        events: *mut libc::epoll_event,
        maxevents: c_int,
        timeout: c_int,
    ) -> c_int;
}

/// What the process has registered, as the kernel should see it.
struct Registrations {
    by_fd: BTreeMap<c_int, u64>,
    /// Token → number of registered fds carrying it.
    tokens: BTreeMap<u64, usize>,
}

impl Registrations {
    const fn new() -> Self {
        Self {
            by_fd: BTreeMap::new(),
            tokens: BTreeMap::new(),
        }
    }

    fn set(&mut self, fd: c_int, token: u64) {
        self.remove(fd);
        self.by_fd.insert(fd, token);
        *self.tokens.entry(token).or_insert(0) += 1;
    }

    fn remove(&mut self, fd: c_int) {
        let Some(token) = self.by_fd.remove(&fd) else {
            return;
        };
        if let Some(count) = self.tokens.get_mut(&token) {
            *count -= 1;
            if *count == 0 {
                self.tokens.remove(&token);
            }
        }
    }

    /// Moves the events of live registrations to the front, in order, and
    /// returns how many there are.
    fn retain_live(&self, events: &mut [libc::epoll_event]) -> usize {
        let mut kept = 0;
        for i in 0..events.len() {
            let token = events[i].u64;
            if self.tokens.contains_key(&token) {
                events[kept] = events[i];
                kept += 1;
            }
        }
        kept
    }
}

static REGISTRATIONS: Mutex<Registrations> = Mutex::new(Registrations::new());

/// Events dropped so far because their registration no longer existed.
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn registrations() -> std::sync::MutexGuard<'static, Registrations> {
    REGISTRATIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many stale events were dropped since the agent started.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// `epoll_ctl(2)`, recording the registration.
///
/// # Safety
/// As for `epoll_ctl(2)`: `event` is valid for `ADD` and `MOD`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    event: *mut libc::epoll_event,
) -> c_int {
    let mut table = registrations();
    // SAFETY: the caller's arguments are passed on unchanged.
    let result = unsafe { __real_epoll_ctl(epfd, op, fd, event) };
    if result == 0 {
        match op {
            // SAFETY: the kernel just read `event` for ADD and MOD.
            libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD => table.set(fd, unsafe { (*event).u64 }),
            libc::EPOLL_CTL_DEL => table.remove(fd),
            _ => {}
        }
    }
    result
}

/// `epoll_wait(2)`, without the events of registrations that were deleted.
///
/// # Safety
/// As for `epoll_wait(2)`: `events` has room for `maxevents` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_epoll_wait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    maxevents: c_int,
    timeout: c_int,
) -> c_int {
    // SAFETY: the caller's arguments are passed on unchanged.
    let n = unsafe { __real_epoll_wait(epfd, events, maxevents, timeout) };
    if n <= 0 {
        return n;
    }
    // SAFETY: the kernel wrote `n` (≤ maxevents) events to `events`.
    let ready = unsafe { std::slice::from_raw_parts_mut(events, n as usize) };
    let kept = registrations().retain_live(ready);
    let stale = ready.len() - kept;
    if stale > 0 {
        DROPPED.fetch_add(stale as u64, Ordering::Relaxed);
        tracing::warn!(
            stale,
            total = dropped(),
            "dropped epoll events of deleted registrations (a known runsc restore bug)"
        );
    }
    kept as c_int
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    fn epoll() -> OwnedFd {
        // SAFETY: epoll_create1 returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: `fd` is a new descriptor nobody else owns.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    /// A pipe whose read end is readable.
    fn readable_pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        nix::unistd::write(&w, b"x").unwrap();
        (r, w)
    }

    fn event(token: u64) -> libc::epoll_event {
        libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        }
    }

    fn wait(ep: &OwnedFd) -> Vec<u64> {
        let mut out = [event(0); 8];
        // SAFETY: `out` has room for 8 events.
        let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), out.as_mut_ptr(), 8, 0) };
        assert!(n >= 0);
        out[..n as usize].iter().map(|e| e.u64).collect()
    }

    fn ctl(ep: &OwnedFd, op: c_int, fd: &OwnedFd, token: u64) -> c_int {
        let mut ev = event(token);
        // SAFETY: `ev` is a valid event for the call.
        unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd.as_raw_fd(), &mut ev) }
    }

    #[test]
    fn events_of_registered_fds_pass_also_through_a_dup_of_the_instance() {
        let ep = epoll();
        let registry = ep.try_clone().unwrap();
        let (r, _w) = readable_pipe();
        assert_eq!(ctl(&registry, libc::EPOLL_CTL_ADD, &r, 0x7e57_0001), 0);
        assert_eq!(wait(&ep), vec![0x7e57_0001]);
        assert_eq!(ctl(&registry, libc::EPOLL_CTL_MOD, &r, 0x7e57_0002), 0);
        assert_eq!(wait(&ep), vec![0x7e57_0002]);
        assert_eq!(ctl(&registry, libc::EPOLL_CTL_DEL, &r, 0), 0);
        assert_eq!(wait(&ep), Vec::<u64>::new());
    }

    #[test]
    fn an_event_whose_registration_the_agent_deleted_is_dropped() {
        // The kernel keeps reporting a registration the agent believes
        // deleted, as runsc does after a restore: register it behind the
        // wrapper's back, next to one the agent knows.
        let ep = epoll();
        let (stale, _w1) = readable_pipe();
        let (live, _w2) = readable_pipe();
        let mut ev = event(0x57a1e);
        // SAFETY: the raw system call with a valid event.
        let raw = unsafe {
            libc::syscall(
                libc::SYS_epoll_ctl,
                ep.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                stale.as_raw_fd(),
                &mut ev as *mut libc::epoll_event,
            )
        };
        assert_eq!(raw, 0);
        assert_eq!(ctl(&ep, libc::EPOLL_CTL_ADD, &live, 0x11fe), 0);
        let before = dropped();
        assert_eq!(wait(&ep), vec![0x11fe]);
        assert!(dropped() > before);
    }

    #[test]
    fn a_failed_call_changes_nothing() {
        let ep = epoll();
        let (r, _w) = readable_pipe();
        assert_eq!(ctl(&ep, libc::EPOLL_CTL_ADD, &r, 0xfa11), 0);
        // A second ADD fails with EEXIST and must not drop the first.
        assert_eq!(ctl(&ep, libc::EPOLL_CTL_ADD, &r, 0xbad), -1);
        assert_eq!(wait(&ep), vec![0xfa11]);
        assert_eq!(ctl(&ep, libc::EPOLL_CTL_DEL, &r, 0), 0);
    }
}
