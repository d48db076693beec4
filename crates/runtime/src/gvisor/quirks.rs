//! Workarounds for misbehaviour of the runsc this backend was built and
//! measured against: Debian's runsc 0.0~20240729 (gVisor release
//! 20240729), systrap platform, cgroup v1 (hybrid) host. Each says what it
//! works around and for which versions it is known to be needed; a newer
//! runsc may not need it (none of them was checked against one: none was
//! reachable here). `docs/runtime.md` has the measurements behind each.
//!
//! Here, as code:
//! - [`NET_DISCONNECT_OK`]: a checkpoint fails while a TCP connection
//!   exists;
//! - [`enter_netns_before_exec`]: runsc refuses a sandbox network in what
//!   it takes for the root network namespace;
//! - [`sever_connections_before_checkpoint`]: a connection reset at save
//!   leaves the restored process's epoll deaf.
//!
//! Elsewhere, because they are part of a larger mechanism:
//! - `record.rs`: runsc keeps saying `running` after a checkpoint without
//!   `--leave-running`, so the runtime's record, not runsc, says whether an
//!   instance is live (0.0~20240729);
//! - `runsc.rs`, `ALLOW_SUID`: set-user-ID bits are honoured (and `sudo`
//!   works inside) only with `--allow-suid`, which 0.0~20240729 lacks: the
//!   flag is passed when `runsc flags` lists it (gVisor 20250818 and later);
//!   without it `bundle.rs` mounts the agent as `sudo`, which relays the
//!   command to the agent (`bin/warren-agent/src/sudo`);
//! - `runsc.rs`, `Runsc::status`: `runsc list` waits for ever while any
//!   sandbox of the root is frozen by the cgroup freezer, so containers are
//!   asked about one at a time with `runsc state` (any version: a frozen
//!   Sentry cannot answer);
//! - `bundle.rs`: a read-only root turns runsc's root overlay off, so the
//!   root is declared writable and the overlay keeps writes out of the
//!   template (0.0~20240729);
//! - `warren_net::link::configure_inside`: runsc moves `eth0`'s addresses
//!   into its netstack and out of the namespace's kernel, so they are
//!   applied again before every `run` and `restore` (any version with
//!   `--network=sandbox`);
//! - `bin/warren-agent/src/epoll_filter.rs`: after a restore runsc reports
//!   epoll events for registrations deleted before the checkpoint; the agent
//!   drops events whose token belongs to no registration (0.0~20240729 and
//!   trixie's build of the same release; reproduction in
//!   `scripts/runsc-epoll-check/`);
//! - `crates/server/src/service/pause.rs`, `RESTORE_ATTEMPTS`: a restored
//!   agent that does not answer within seconds is restored again from the
//!   same image, at most three times (0.0~20240729);
//! - `warren_core::SandboxId`: runsc matches container ids by prefix, so
//!   ids have a fixed length and none is a prefix of another (any version).

use std::net::Ipv4Addr;

use tokio::process::Command;
use warren_core::SandboxId;
use warren_net::NetnsEntry;

/// `runsc --net-disconnect-ok`, given to `run` and `restore`.
///
/// runsc 0.0~20240729 fails a checkpoint, and kills the sandbox, while any
/// TCP connection of the sandbox exists, even one in `TIME_WAIT`. With the
/// flag it resets established connections at save and keeps listeners; the
/// clients reconnect after a restore.
pub(super) const NET_DISCONNECT_OK: &str = "--net-disconnect-ok";

/// Makes `cmd` (a `runsc run` or `restore`) enter the sandbox's network
/// namespace, and a private mount namespace with a small tmpfs over
/// `/proc/sys/net`, between fork and exec (see `warren_net::NetnsEntry`).
///
/// runsc 0.0~20240729 refuses `--network=sandbox` with "cannot run with
/// network enabled in root network namespace" when its check misfires (it
/// did on every kernel tried here); the check was fixed upstream after that
/// release. The mount namespace ends with the runsc processes: nothing is
/// left to unmount.
pub(super) fn enter_netns_before_exec(cmd: &mut Command, entry: NetnsEntry) {
    // SAFETY: `enter` only makes raw system calls on data prepared before
    // the fork, which is what `pre_exec` requires.
    unsafe {
        cmd.pre_exec(move || entry.enter());
    }
}

/// Ends every TCP connection of the host to `sandbox_ip` before a
/// checkpoint (see `warren_net::sever_host_connections`); returns how many
/// there were. A failure is logged, not returned: the checkpoint goes on.
///
/// With runsc 0.0~20240729 a connection reset at save (what
/// [`NET_DISCONNECT_OK`] does) can leave the restored process's epoll
/// instance deaf for good: the agent's listener completes handshakes and
/// never answers (gVisor issue 13920). With no connection in the image
/// there is nothing to reset.
pub(super) async fn sever_connections_before_checkpoint(
    id: &SandboxId,
    sandbox_ip: Ipv4Addr,
) -> usize {
    match warren_net::sever_host_connections(sandbox_ip).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(sandbox = %id, error = %e, "could not reset the host's connections before a checkpoint");
            0
        }
    }
}
