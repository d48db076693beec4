//! Running `ip` and `nft` with a script on stdin. Batching keeps the number
//! of processes per sandbox operation at one.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::error::NetError;

/// Runs `program args…` with `script` on stdin; fails with its stderr.
pub(crate) async fn run_script(
    op: &str,
    program: &str,
    args: &[&str],
    script: &str,
) -> Result<(), NetError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| NetError::io(format!("{op}: starting {program}"), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| NetError::io(format!("{op}: writing to {program}"), e))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| NetError::io(format!("{op}: waiting for {program}"), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(NetError::Command {
        op: op.to_owned(),
        detail: format!(
            "{program} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

/// Blocking variant for start-up and `Drop`, where no runtime may be running.
pub(crate) fn run_script_blocking(
    op: &str,
    program: &str,
    args: &[&str],
    script: &str,
) -> Result<(), NetError> {
    use std::io::Write;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::io(format!("{op}: starting {program}"), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NetError::io(format!("{op}: writing to {program}"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::io(format!("{op}: waiting for {program}"), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(NetError::Command {
        op: op.to_owned(),
        detail: format!(
            "{program} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}
