//! The fake agent's processes that take input or run for a while: their
//! event streams are written by a task as things happen, not all at once.
//!
//! - A command started with stdin open whose built-in ends at once
//!   ([`Kind::AfterStdin`]) keeps its output until `CloseStdin`.
//! - `cat` with stdin ([`Kind::EchoStdin`]) copies each `SendInput` to
//!   stdout at once and ends with 0 when stdin closes.
//! - A command started with a PTY ([`Kind::Terminal`]) is a terminal in
//!   echo mode: it prints `terminal COLSxROWS` (its size at start), then
//!   each input comes back as PTY output; a line `exit N` ends it with `N`,
//!   Ctrl-D (or closing its input) with 0; a resize (`Update`) prints
//!   `resized to COLSxROWS`.
//! - `wait-for PATH` runs until the in-memory file `PATH` exists.
//!
//! Every one of them is listed while it runs and ends as killed when it is
//! signalled; its input channel and list entry go when it ends.

use std::sync::Arc;

use axum::body::Bytes;
use futures::channel::mpsc::UnboundedSender;
use tokio::sync::mpsc::UnboundedReceiver;
use warren_envd::envelope;
use warren_envd::process::{DataEvent, EndEvent, ProcessEvent, PtySize};

use super::agent::{AgentState, event};
use super::commands::CommandOutput;

/// Input for a running process, from `SendInput`, `CloseStdin` and `Update`.
#[derive(Debug)]
pub(super) enum Input {
    Bytes(Vec<u8>),
    Close,
    Resize(PtySize),
}

/// What an interactive process does with its input.
pub(super) enum Kind {
    AfterStdin(CommandOutput),
    EchoStdin,
    /// With its size at start.
    Terminal(PtySize),
}

/// Runs process `pid` of `kind`, writing its events (after `start`, which
/// the caller sent) to `out` until it ends.
pub(super) async fn run(
    state: Arc<AgentState>,
    pid: u32,
    kind: Kind,
    mut input: UnboundedReceiver<Input>,
    out: UnboundedSender<Bytes>,
) {
    let wake = state.signal(pid);
    let send = |frame: Bytes| {
        let _ = out.unbounded_send(frame);
    };
    if let Kind::Terminal(size) = &kind {
        send(data(DataEvent::Pty(
            format!("terminal {}x{}\r\n", size.cols, size.rows).into_bytes(),
        )));
    }
    let mut line = Vec::new();
    let code = loop {
        let next = tokio::select! {
            () = wake.notified() => None,
            next = input.recv() => Some(next.unwrap_or(Input::Close)),
        };
        let Some(next) = next else {
            break None;
        };
        match (&kind, next) {
            (Kind::AfterStdin(output), Input::Close) => {
                for frame in super::agent::output_frames(output) {
                    send(frame);
                }
                state.finished(pid);
                send(envelope::end_frame(None));
                return;
            }
            (Kind::EchoStdin, Input::Bytes(b)) => send(data(DataEvent::Stdout(b))),
            (Kind::EchoStdin | Kind::Terminal(_), Input::Close) => break Some(0),
            (Kind::Terminal(_), Input::Bytes(b)) => {
                let eof = b.contains(&0x04);
                let echo: Vec<u8> = b.iter().copied().filter(|&c| c != 0x04).collect();
                if !echo.is_empty() {
                    send(data(DataEvent::Pty(echo.clone())));
                }
                if eof {
                    break Some(0);
                }
                if let Some(code) = exit_line(&mut line, &echo) {
                    break Some(code);
                }
            }
            (Kind::Terminal(_), Input::Resize(size)) => send(data(DataEvent::Pty(
                format!("resized to {}x{}\r\n", size.cols, size.rows).into_bytes(),
            ))),
            // Input a process does not read is dropped, as a real one's
            // would wait in a pipe.
            _ => {}
        }
    };
    state.finished(pid);
    send(end(code));
    send(envelope::end_frame(None));
}

/// Runs `wait-for PATH` as process `pid`.
pub(super) async fn wait_for(
    state: Arc<AgentState>,
    pid: u32,
    path: String,
    out: UnboundedSender<Bytes>,
) {
    let wake = state.signal(pid);
    let send = |frame: Bytes| {
        let _ = out.unbounded_send(frame);
    };
    send(data(DataEvent::Stdout(
        format!("waiting for {path}\n").into_bytes(),
    )));
    let mut changes = state.file_changes();
    let code = loop {
        if state.has_file(&path) {
            send(data(DataEvent::Stdout(
                format!("{path} is there\n").into_bytes(),
            )));
            break Some(0);
        }
        tokio::select! {
            () = wake.notified() => break None,
            changed = changes.changed() => if changed.is_err() { break None },
        }
    };
    state.finished(pid);
    send(end(code));
    send(envelope::end_frame(None));
}

/// Adds `input` to the terminal's current line; the code of a completed
/// `exit N` line, if one was.
fn exit_line(line: &mut Vec<u8>, input: &[u8]) -> Option<i32> {
    for &c in input {
        if c != b'\n' && c != b'\r' {
            line.push(c);
            continue;
        }
        let text = String::from_utf8_lossy(line).trim().to_owned();
        line.clear();
        if let Some(code) = text.strip_prefix("exit ") {
            return Some(code.trim().parse().unwrap_or(2));
        }
    }
    None
}

fn data(d: DataEvent) -> Bytes {
    event(ProcessEvent::Data(d))
}

/// The end event: exited with `code`, or killed (`None`).
fn end(code: Option<i32>) -> Bytes {
    event(ProcessEvent::End(match code {
        Some(code) => EndEvent {
            exit_code: code,
            exited: true,
            status: format!("exit status {code}"),
            error: None,
        },
        None => EndEvent {
            exit_code: -1,
            exited: false,
            status: "signal: killed".into(),
            error: None,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_line_ends_the_terminal_with_its_code() {
        let mut line = Vec::new();
        assert_eq!(exit_line(&mut line, b"echo hi\nex"), None);
        assert_eq!(exit_line(&mut line, b"it 7"), None);
        assert_eq!(exit_line(&mut line, b"\r"), Some(7));
        assert_eq!(exit_line(&mut line, b"exit x\n"), Some(2));
    }
}
