//! Ending the host's TCP connections to a sandbox before a checkpoint.
//!
//! runsc saves an established connection by resetting it
//! (`--net-disconnect-ok`), and with runsc 20240729 a process that was
//! waiting on such a socket through epoll can restore with its epoll
//! instance deaf for good: the agent's listener then completes handshakes
//! but never answers (gVisor issue 13920). The host end of every connection
//! to the sandbox — the daemon's to the agent, proxied clients' to the
//! sandbox's servers, calls from inside to the daemon — is therefore
//! destroyed first (`ss -K`, the kernel's sock_diag destroy), and the
//! sandbox is given a moment to see the resets and close its ends, so the
//! image holds no connection at all.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::cmd::run_script;
use crate::error::NetError;

/// How long a sandbox gets to close the connections the host reset.
pub const QUIESCE: Duration = Duration::from_millis(20);

/// Destroys every host TCP socket whose peer is `sandbox`, then waits
/// [`QUIESCE`].
pub async fn sever_host_connections(sandbox: Ipv4Addr) -> Result<(), NetError> {
    let dst = sandbox.to_string();
    run_script(
        "resetting the host's connections to the sandbox",
        "ss",
        &["-K", "-t", "-n", "dst", &dst],
        "",
    )
    .await?;
    tokio::time::sleep(QUIESCE).await;
    Ok(())
}
