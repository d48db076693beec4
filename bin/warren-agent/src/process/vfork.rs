//! Starting a program with vfork semantics: `clone(CLONE_VM | CLONE_VFORK)`.
//!
//! Forking the agent copies its page tables, which inside gVisor costs about
//! three times a vfork-style spawn (measured: ~25 ms against ~8 ms per
//! process). std's `Command` falls back to `fork` as soon as a `pre_exec`
//! hook or a user switch is asked for, so the agent spawns on its own.
//!
//! Protocol:
//! - [`Command::new`] builds everything the child needs in the parent: the C
//!   strings and pointer arrays of path, argv and envp, the working
//!   directory, the stdio descriptors, the identity. The child allocates
//!   nothing, takes no lock and touches no memory but that.
//! - [`Command::spawn`] blocks every signal on the calling thread, so no
//!   handler of the agent can run in the child (which shares the agent's
//!   memory), then clones onto a dedicated stack. The child `dup2`s stdio,
//!   calls `setsid`, takes the terminal on fd 0 (`TIOCSCTTY`) when asked,
//!   switches identity, `chdir`s, resets every signal disposition to the
//!   default, unblocks every signal and `execve`s (`/bin/sh PATH ARGS…` on
//!   `ENOEXEC`, like `execvp`). On failure it stores the step and `errno` in
//!   the parent's memory and exits with 127.
//! - `CLONE_VFORK` resumes the parent only once the child has exec'd or
//!   exited, so the prepared memory stays valid and the failure slot is final
//!   when `clone` returns. A child that failed is reaped here at once: the
//!   caller must hold the reaper's gate (see `crate::reaper`) so that nothing
//!   else can collect it first.
//!
//! Invariants: every descriptor of the agent is close-on-exec, so the child
//! inherits only fds 0–2. The identity switch uses the raw system calls, not
//! glibc's `setuid`/`setgid`/`setgroups`: those broadcast the change to every
//! thread of the (shared-memory) process, whereas the raw calls change the
//! child's credentials only.

#[cfg(not(target_pointer_width = "64"))]
compile_error!("the raw setuid/setgid/setgroups calls assume 32-bit ids (64-bit Linux)");

use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_int, c_void};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::unistd::Pid;

/// Room for the child's few calls before `execve`.
const STACK_SIZE: usize = 64 * 1024;
/// Signals 1..=64: the kernel's `_NSIG` on x86_64 and aarch64.
const LAST_SIGNAL: c_int = 64;
const SHELL: &std::ffi::CStr = c"/bin/sh";
/// A kernel `struct sigaction` (handler, flags, restorer, mask) of zeros:
/// SIG_DFL, no flags, empty mask. Large enough on every 64-bit architecture.
const KERNEL_SIG_DFL: [u64; 4] = [0; 4];

#[derive(Debug, thiserror::Error)]
pub enum VforkError {
    #[error("the {0} contains a NUL byte")]
    NulByte(&'static str),
    #[error("{step} failed: {source}")]
    Step {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The user, primary group and supplementary groups the child switches to.
pub struct Identity {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

/// The steps of the child, as reported on failure.
const STEPS: [&str; 8] = [
    "redirecting stdio (dup2)",
    "creating a session (setsid)",
    "taking the controlling terminal (TIOCSCTTY)",
    "setting supplementary groups (setgroups)",
    "setting the group (setgid)",
    "setting the user (setuid)",
    "entering the working directory (chdir)",
    "executing the program (execve)",
];
const STEP_STDIO: usize = 0;
const STEP_SETSID: usize = 1;
const STEP_CTTY: usize = 2;
const STEP_SETGROUPS: usize = 3;
const STEP_SETGID: usize = 4;
const STEP_SETUID: usize = 5;
const STEP_CHDIR: usize = 6;
const STEP_EXEC: usize = 7;

/// A program ready to be started; see the module docs.
pub struct Command {
    path: CString,
    /// Owns the strings `argv` points to.
    _args: Vec<CString>,
    /// NULL-terminated.
    argv: Vec<*const c_char>,
    /// `/bin/sh PATH ARGS… NULL`, tried when `execve` says `ENOEXEC`.
    sh_argv: Vec<*const c_char>,
    /// Owns the strings `envp` points to.
    _env: Vec<CString>,
    /// NULL-terminated.
    envp: Vec<*const c_char>,
    cwd: CString,
    /// The child's fds 0, 1 and 2; each numbered 3 or above.
    stdio: [OwnedFd; 3],
    controlling_tty: bool,
    identity: Option<Identity>,
}

fn c_string(bytes: &[u8], what: &'static str) -> Result<CString, VforkError> {
    CString::new(bytes).map_err(|_| VforkError::NulByte(what))
}

/// Moves `fd` to a number of 3 or above (close-on-exec), so that the child's
/// `dup2` onto 0–2 never overwrites a descriptor it still has to copy.
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, VforkError> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // std duplicates with F_DUPFD_CLOEXEC and a minimum of 3.
    fd.try_clone().map_err(|source| VforkError::Step {
        step: "moving a stdio descriptor above 2",
        source,
    })
}

impl Command {
    /// Prepares `path` to run with `argv` (its first entry is argv[0]), an
    /// environment of exactly `env`, in `cwd`, with `stdio` as fds 0, 1, 2.
    pub fn new(
        path: &Path,
        argv: &[&str],
        env: &BTreeMap<String, String>,
        cwd: &Path,
        stdio: [OwnedFd; 3],
    ) -> Result<Self, VforkError> {
        let path = c_string(path.as_os_str().as_bytes(), "program path")?;
        let args = argv
            .iter()
            .map(|a| c_string(a.as_bytes(), "argument list"))
            .collect::<Result<Vec<_>, _>>()?;
        let env_strings = env
            .iter()
            .map(|(k, v)| c_string(format!("{k}={v}").as_bytes(), "environment"))
            .collect::<Result<Vec<_>, _>>()?;
        let cwd = c_string(cwd.as_os_str().as_bytes(), "working directory")?;
        let [stdin, stdout, stderr] = stdio;
        let stdio = [
            above_stdio(stdin)?,
            above_stdio(stdout)?,
            above_stdio(stderr)?,
        ];

        let argv: Vec<*const c_char> = args
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let sh_argv: Vec<*const c_char> = [SHELL.as_ptr(), path.as_ptr()]
            .into_iter()
            .chain(args.iter().skip(1).map(|a| a.as_ptr()))
            .chain([std::ptr::null()])
            .collect();
        let envp: Vec<*const c_char> = env_strings
            .iter()
            .map(|e| e.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        Ok(Self {
            path,
            _args: args,
            argv,
            sh_argv,
            _env: env_strings,
            envp,
            cwd,
            stdio,
            controlling_tty: false,
            identity: None,
        })
    }

    /// Makes fd 0 (a PTY slave) the controlling terminal of the new session.
    pub fn controlling_tty(mut self, yes: bool) -> Self {
        self.controlling_tty = yes;
        self
    }

    /// Switches to `identity` before `exec` (needs root).
    pub fn identity(mut self, identity: Option<Identity>) -> Self {
        self.identity = identity;
        self
    }

    /// Starts the program and returns its pid, which is also its session and
    /// process group id. Call it with the reaper's gate held (module docs).
    pub fn spawn(&self) -> Result<Pid, VforkError> {
        let args = ChildArgs {
            path: self.path.as_ptr(),
            argv: self.argv.as_ptr(),
            sh_argv: self.sh_argv.as_ptr(),
            envp: self.envp.as_ptr(),
            cwd: self.cwd.as_ptr(),
            stdio: [
                self.stdio[0].as_raw_fd(),
                self.stdio[1].as_raw_fd(),
                self.stdio[2].as_raw_fd(),
            ],
            controlling_tty: self.controlling_tty,
            identity: self
                .identity
                .as_ref()
                .map(|id| (id.uid, id.gid, id.groups.as_ptr(), id.groups.len())),
            failed_step: AtomicUsize::new(0),
            errno: AtomicI32::new(0),
        };
        let mut stack: Box<[MaybeUninit<u8>]> = Box::new_uninit_slice(STACK_SIZE);
        // The stack grows down from a 16-byte aligned top.
        let top = (stack.as_mut_ptr() as usize + STACK_SIZE) & !15;

        let blocked = block_all_signals();
        // SAFETY: `child_main` gets a pointer to `args` and runs on its own
        // `stack`; both outlive the child's use of them, because CLONE_VFORK
        // suspends this thread until the child has exec'd or exited. The
        // child only makes async-signal-safe calls on memory prepared above,
        // and all signals are blocked so no handler runs in it.
        let pid = unsafe {
            libc::clone(
                child_main,
                top as *mut c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                &args as *const ChildArgs as *mut c_void,
            )
        };
        let clone_error = std::io::Error::last_os_error();
        set_signal_mask(blocked);
        drop(stack);

        if pid < 0 {
            return Err(VforkError::Step {
                step: "cloning the agent (clone)",
                source: clone_error,
            });
        }
        let pid = Pid::from_raw(pid);
        let errno = args.errno.load(Ordering::Acquire);
        if errno == 0 {
            return Ok(pid);
        }
        reap(pid);
        let step = STEPS
            .get(args.failed_step.load(Ordering::Relaxed))
            .copied()
            .unwrap_or("spawning");
        Err(VforkError::Step {
            step,
            source: std::io::Error::from_raw_os_error(errno),
        })
    }
}

/// Collects a child that failed before `exec` (it has exited already).
fn reap(pid: Pid) {
    loop {
        match nix::sys::wait::waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(pid = pid.as_raw(), error = %e, "reaping a failed spawn");
                return;
            }
        }
    }
}

/// A kernel signal set (`rt_sigprocmask` takes 8 bytes on 64-bit Linux).
type KernelSigset = u64;

/// Blocks every signal on this thread, glibc's internal ones included;
/// returns the previous mask.
fn block_all_signals() -> KernelSigset {
    let all: KernelSigset = !0;
    let mut old: KernelSigset = 0;
    // SAFETY: rt_sigprocmask reads one 8-byte set from `all` and writes the
    // previous one to `old`, both valid for the call.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const KernelSigset,
            &mut old as *mut KernelSigset,
            size_of::<KernelSigset>(),
        );
    }
    old
}

/// Sets this thread's signal mask (from [`block_all_signals`]);
/// async-signal-safe.
fn set_signal_mask(mask: KernelSigset) {
    // SAFETY: rt_sigprocmask reads one 8-byte set from a valid pointer.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const KernelSigset,
            std::ptr::null_mut::<KernelSigset>(),
            size_of::<KernelSigset>(),
        );
    }
}

/// What the child reads; written by the child only through the atomics.
struct ChildArgs {
    path: *const c_char,
    argv: *const *const c_char,
    sh_argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    stdio: [c_int; 3],
    controlling_tty: bool,
    identity: Option<(libc::uid_t, libc::gid_t, *const libc::gid_t, usize)>,
    failed_step: AtomicUsize,
    errno: AtomicI32,
}

/// The child: runs on the dedicated stack, in the agent's memory, with every
/// signal blocked. Never returns.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildArgs` the parent keeps alive while it is
    // suspended by CLONE_VFORK.
    let args = unsafe { &*(arg as *const ChildArgs) };
    // SAFETY: this is the vfork child and `args` is the parent's prepared memory.
    let step = unsafe { setup_and_exec(args) };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    args.failed_step.store(step, Ordering::Relaxed);
    args.errno
        .store(if errno == 0 { 1 } else { errno }, Ordering::Release);
    // SAFETY: _exit ends the child without running any of the agent's exit
    // handlers or flushing its buffers.
    unsafe { libc::_exit(127) }
}

/// Prepares the child's process state and executes the program; returns the
/// failed step, with `errno` set, when something fails.
///
/// # Safety
/// Must run only in the vfork child, with `args` pointing to the memory the
/// parent prepared in [`Command::spawn`].
unsafe fn setup_and_exec(args: &ChildArgs) -> usize {
    // SAFETY: each call is async-signal-safe and gets descriptors, C
    // strings, NULL-terminated arrays or sigsets that are valid for its
    // duration; the identity calls are raw system calls (module docs).
    unsafe {
        for (target, &fd) in (0..).zip(args.stdio.iter()) {
            if libc::dup2(fd, target) < 0 {
                return STEP_STDIO;
            }
        }
        if libc::setsid() < 0 {
            return STEP_SETSID;
        }
        if args.controlling_tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            return STEP_CTTY;
        }
        if let Some((uid, gid, groups, len)) = args.identity {
            if libc::syscall(libc::SYS_setgroups, len, groups) < 0 {
                return STEP_SETGROUPS;
            }
            if libc::syscall(libc::SYS_setgid, gid) < 0 {
                return STEP_SETGID;
            }
            if libc::syscall(libc::SYS_setuid, uid) < 0 {
                return STEP_SETUID;
            }
        }
        if libc::chdir(args.cwd) < 0 {
            return STEP_CHDIR;
        }
        // Default dispositions for every signal, like POSIX_SPAWN_SETSIGDEF:
        // the agent ignores SIGPIPE (std) and glibc may ignore its internal
        // signals 32 and 33, which its `sigaction` refuses to touch, hence
        // the raw call. SIGKILL and SIGSTOP cannot change: errors are
        // ignored. Then unblock everything.
        let default = KERNEL_SIG_DFL;
        for sig in 1..=LAST_SIGNAL {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const [u64; 4],
                std::ptr::null_mut::<[u64; 4]>(),
                size_of::<KernelSigset>(),
            );
        }
        set_signal_mask(0);

        libc::execve(args.path, args.argv, args.envp);
        if Errno::last_raw() == libc::ENOEXEC {
            // A script without `#!`: run it with the shell, as execvp does.
            libc::execve(SHELL.as_ptr(), args.sh_argv, args.envp);
        }
        STEP_EXEC
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
    }

    fn null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    fn command(path: &str, argv: &[&str], cwd: &str) -> (Command, OwnedFd) {
        let (read, write) = pipe();
        let env = BTreeMap::from([("GREETING".to_string(), "hello there".to_string())]);
        let stdio = [null(), write.try_clone().unwrap(), write];
        let cmd = Command::new(Path::new(path), argv, &env, Path::new(cwd), stdio).unwrap();
        (cmd, read)
    }

    fn wait(pid: Pid) -> nix::sys::wait::WaitStatus {
        nix::sys::wait::waitpid(pid, None).unwrap()
    }

    #[test]
    fn runs_the_program_with_argv0_env_cwd_and_own_session() {
        let script = r#"printf '%s|%s|%s\n' "$0" "$GREETING" "$(pwd)"
cut -d' ' -f5,6 /proc/$$/stat
tr '\0' '\n' < /proc/$$/cmdline | head -n1
exit 3"#;
        let (cmd, read) = command("/bin/sh", &["my-sh", "-c", script, "arg1"], "/tmp");
        let pid = cmd.spawn().unwrap();
        // Closes the parent's copy of the write end, so reading ends.
        drop(cmd);
        let mut out = String::new();
        std::fs::File::from(read).read_to_string(&mut out).unwrap();
        assert_eq!(wait(pid), nix::sys::wait::WaitStatus::Exited(pid, 3));
        let pid = pid.as_raw();
        assert_eq!(out, format!("arg1|hello there|/tmp\n{pid} {pid}\nmy-sh\n"));
    }

    #[test]
    fn exec_failure_names_the_step_and_errno() {
        let (cmd, _read) = command("/no/such/program", &["x"], "/");
        match cmd.spawn() {
            Err(VforkError::Step { step, source }) => {
                assert_eq!(step, STEPS[STEP_EXEC]);
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
            }
            other => panic!("expected an exec failure, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn bad_cwd_fails_at_chdir() {
        let (cmd, _read) = command("/bin/true", &["true"], "/no/such/dir");
        match cmd.spawn() {
            Err(VforkError::Step { step, source }) => {
                assert_eq!(step, STEPS[STEP_CHDIR]);
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
            }
            other => panic!("expected a chdir failure, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn nul_bytes_are_rejected_before_spawning() {
        let env = BTreeMap::from([("A".to_string(), "b\0c".to_string())]);
        let stdio = [null(), null(), null()];
        let err = Command::new(
            Path::new("/bin/true"),
            &["true"],
            &env,
            Path::new("/"),
            stdio,
        )
        .err()
        .unwrap();
        assert!(matches!(err, VforkError::NulByte("environment")));
    }
}
