//! `POST /quiesce`: ends every process in the sandbox but the agent, for a
//! pause that keeps only the filesystem (the daemon checkpoints right
//! after, so the image holds the agent and the files alone).
//!
//! Every process gets SIGTERM, then up to [`GRACE`] to end, then SIGKILL;
//! the answer comes once none is left (204), or 500 naming how many still
//! are after [`KILL_WAIT`]. As PID 1 the agent signals with `kill(-1, …)`,
//! which reaches every process of the sandbox but itself: those it started
//! (start command, execs, PTYs) and whatever they started, orphans too.
//! Run as an ordinary process (tests) it signals only the process groups it
//! started, never the host's processes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nix::sys::signal::Signal;

use crate::fs::files::FilesError;
use crate::state::Shared;

/// How long processes get to end after SIGTERM.
const GRACE: Duration = Duration::from_secs(2);
/// How long processes get to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Between two looks at what is left.
const POLL: Duration = Duration::from_millis(20);

pub async fn quiesce(State(state): State<Shared>) -> Response {
    signal_all(&state, Signal::SIGTERM);
    if wait_gone(&state, GRACE).await == 0 {
        return StatusCode::NO_CONTENT.into_response();
    }
    signal_all(&state, Signal::SIGKILL);
    match wait_gone(&state, KILL_WAIT).await {
        0 => StatusCode::NO_CONTENT.into_response(),
        left => FilesError::from_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{left} processes are still running after SIGKILL"),
        )
        .into_response(),
    }
}

fn signal_all(state: &Shared, sig: Signal) {
    if state.is_pid1 {
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => tracing::warn!(signal = %sig, error = %e, "signalling every process failed"),
        }
    } else {
        for proc in state.procs.all() {
            let _ = proc.signal(sig);
        }
    }
}

/// Waits up to `limit` until no other process is left; how many are.
async fn wait_gone(state: &Shared, limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = others(state);
        if left == 0 || tokio::time::Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The processes besides the agent: as PID 1 every live process in
/// `/proc` (zombies are the reaper's, and gone in a moment), else those
/// the agent started.
fn others(state: &Shared) -> usize {
    if !state.is_pid1 {
        return state.procs.all().len();
    }
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me && !is_zombie(*pid))
        .count()
}

/// Whether `pid` has exited and awaits its reaping (or is gone already).
fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The state follows the command name, which may itself hold ") ".
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .is_none_or(|s| s == 'Z' || s == 'X')
}
