//! Runs a build command, streaming its output lines as progress.
//!
//! The command gets its own process group with no stdin. If the future is
//! dropped (the build was cancelled), the whole group is killed so no
//! `dpkg` keeps writing into a directory the next build will clean.

use std::collections::VecDeque;
use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::error::TemplateError;
use crate::progress::Progress;

/// Output lines kept for the error message of a failed command.
const TAIL_LINES: usize = 20;

/// Runs `cmd` to completion; every output line (stdout and stderr) becomes
/// a progress line. Fails with the last lines of output when it exits non-zero.
pub(crate) async fn run(mut cmd: Command, progress: &Progress) -> Result<(), TemplateError> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| TemplateError::Spawn {
        program: program.clone(),
        source,
    })?;
    let mut group = child.id().map(GroupGuard);

    let (tx, mut rx) = mpsc::channel::<String>(64);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_lines(out, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_lines(err, tx.clone()));
    }
    drop(tx);

    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    while let Some(line) = rx.recv().await {
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.clone());
        progress.line(line).await;
    }
    let status = child.wait().await.map_err(|source| TemplateError::Spawn {
        program: program.clone(),
        source,
    })?;
    // Reap whatever the command left behind in its group (e.g. a gpg-agent),
    // then disarm: once the group is empty its id may be reused.
    if let Some(g) = group.take() {
        g.kill();
        std::mem::forget(g);
    }
    if status.success() {
        return Ok(());
    }
    Err(TemplateError::Command {
        program,
        status: status.to_string(),
        tail: Vec::from(tail).join("\n"),
    })
}

async fn forward_lines(stream: impl AsyncRead + Unpin, tx: mpsc::Sender<String>) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                if !line.is_empty() && tx.send(line).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Kills the command's process group when dropped (a cancelled build). It
/// is dropped before the child, which is not reaped yet, so the group id
/// cannot have been reused.
struct GroupGuard(u32);

impl GroupGuard {
    fn kill(&self) {
        if let Ok(pid) = i32::try_from(self.0) {
            // ESRCH (group already empty) is the normal case.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_lines_and_reports_failures_with_output() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one; echo two >&2; exit 3"]);
        let err = run(cmd, &Progress::new(tx)).await.unwrap_err().to_string();
        let mut lines = Vec::new();
        while let Ok(l) = rx.try_recv() {
            lines.push(l);
        }
        lines.sort();
        assert_eq!(lines, ["one", "two"]);
        assert!(err.contains("exit status: 3"), "{err}");
        assert!(err.contains("one") && err.contains("two"), "{err}");
    }

    #[tokio::test]
    async fn missing_program_says_how_to_install() {
        let (tx, _rx) = mpsc::channel(16);
        let err = run(Command::new("/nonexistent/warren-x"), &Progress::new(tx))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("scripts/deps.sh"), "{err}");
    }
}
