//! Entering a sandbox's network namespace from a freshly forked child,
//! before it execs runsc.
//!
//! runsc 0.0~20240729 refuses `--network=sandbox` when it believes it runs in
//! the root network namespace, a check that misfires on this kernel. The
//! working recipe: join the sandbox's namespace, unshare a private mount
//! namespace and mount a tiny tmpfs over `/proc/sys/net`. The mount namespace
//! lives as long as the runsc processes that inherit it and vanishes with
//! them, so nothing is left to unmount.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use crate::error::NetError;
use crate::names::SandboxNames;

/// Everything the child needs, prepared before `fork` so that the child
/// only makes raw system calls (no allocation, no locks).
#[derive(Debug)]
pub struct NetnsEntry {
    netns: File,
    root: CString,
    target: CString,
    fstype: CString,
    options: CString,
}

impl NetnsEntry {
    /// Opens the sandbox's namespace; fails when it does not exist.
    pub fn open(names: &SandboxNames) -> Result<Self, NetError> {
        let path = names.netns_path();
        let netns = File::open(&path).map_err(|e| {
            NetError::io(format!("opening network namespace {}", path.display()), e)
        })?;
        let cstr = |s: &str| CString::new(s).unwrap_or_default();
        Ok(Self {
            netns,
            root: cstr("/"),
            target: cstr("/proc/sys/net"),
            fstype: cstr("tmpfs"),
            options: cstr("size=16k,mode=555"),
        })
    }

    /// Moves the calling process into the namespace and a private mount
    /// namespace with `/proc/sys/net` hidden.
    ///
    /// Only call this in a single-threaded child between `fork` and `exec`
    /// (e.g. from `Command::pre_exec`): it changes the namespaces of the
    /// calling thread and uses only async-signal-safe system calls.
    pub fn enter(&self) -> io::Result<()> {
        // SAFETY: plain system calls on a descriptor we own and on
        // NUL-terminated strings that outlive the calls.
        unsafe {
            if libc::setns(self.netns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::mount(
                std::ptr::null(),
                self.root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::mount(
                self.fstype.as_ptr(),
                self.target.as_ptr(),
                self.fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                self.options.as_ptr().cast(),
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}
