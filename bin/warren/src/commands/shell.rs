//! `warren shell`: an interactive terminal in a sandbox.
//!
//! Protocol (`GET /v1/sandboxes/{id}/pty` upgraded to a WebSocket): binary
//! frames carry terminal bytes both ways; the client sends
//! `{"type":"resize",...}` text frames on SIGWINCH; the server ends with an
//! `{"type":"exit","exit_code":N}` text frame and closes.
//!
//! When stdin and stdout are terminals, the local terminal is put in raw mode
//! for the session and restored on every way out: normal exit, errors, the
//! remote end closing, SIGTERM/SIGHUP, and panics (the guard's `Drop`).
//! Without a terminal, input is piped through and end of input sends one
//! Ctrl-D (end of file for the remote terminal).

use std::io::{self, IsTerminal, Read};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use warren_api_types::{PtyClientMessage, PtyServerMessage};
use warren_core::SandboxId;

use super::Ctx;
use crate::output::write_stdout;
use crate::{exit, parse};

/// Size used when there is no local terminal to ask.
const DEFAULT_SIZE: (u16, u16) = (80, 24);
/// End-of-file character of a terminal in canonical mode.
const CTRL_D: u8 = 0x04;

/// Open an interactive terminal in a sandbox.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exits with the remote shell's exit code.

Examples:
  warren shell $ID
  warren shell $ID --cmd /usr/bin/python3
  warren shell $ID --user root
  printf 'uname -a\\nexit\\n' | warren shell $ID")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// Program to run on the terminal [default on the daemon: a login bash].
    #[arg(long, value_name = "PATH")]
    cmd: Option<String>,
    /// User to run it as [default: user].
    #[arg(short, long, value_name = "USER")]
    user: Option<String>,
}

/// Raw mode for as long as it lives.
struct RawMode;

impl RawMode {
    fn enable() -> anyhow::Result<Self> {
        crossterm::terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        Ok(Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Best effort: there is no one left to report a failure to.
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    let interactive = io::stdin().is_terminal() && io::stdout().is_terminal();
    let size = if interactive {
        crossterm::terminal::size().unwrap_or(DEFAULT_SIZE)
    } else {
        DEFAULT_SIZE
    };
    let req = client.pty_request(&args.id, size, args.cmd.as_deref(), args.user.as_deref())?;
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| client.pty_error(e))?;

    let raw = if interactive {
        Some(RawMode::enable()?)
    } else {
        None
    };
    let result = session(ws, interactive).await;
    drop(raw);
    result
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn session(ws: Socket, interactive: bool) -> anyhow::Result<i32> {
    let (mut sink, mut source) = ws.split();
    let mut input = spawn_stdin_reader();
    let mut winch = signal(SignalKind::window_change()).context("cannot watch terminal resizes")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut input_open = true;
    let mut exit_code: Option<i32> = None;

    loop {
        tokio::select! {
            frame = source.next() => match frame {
                None | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Binary(bytes))) => write_stdout(&bytes)?,
                Some(Ok(Message::Text(text))) => {
                    if let Ok(PtyServerMessage::Exit { exit_code: code }) =
                        serde_json::from_str::<PtyServerMessage>(&text)
                    {
                        exit_code = Some(code);
                    }
                }
                Some(Ok(_)) => {}
                // A connection dropped right after the exit message is a normal end.
                Some(Err(_)) if exit_code.is_some() => break,
                Some(Err(e)) => return Err(e).context("the terminal connection broke"),
            },
            data = input.recv(), if input_open => {
                let bytes = match data {
                    Some(bytes) => bytes,
                    None => {
                        input_open = false;
                        if interactive { continue }
                        vec![CTRL_D]
                    }
                };
                if sink.send(Message::binary(bytes)).await.is_err() {
                    // The server is closing; its last frames are still to be read.
                    input_open = false;
                }
            },
            _ = winch.recv() => {
                if interactive && let Ok((cols, rows)) = crossterm::terminal::size() {
                    let msg = serde_json::to_string(&PtyClientMessage::Resize { cols, rows })?;
                    let _ = sink.send(Message::text(msg)).await;
                }
            },
            _ = term.recv() => return Ok(close(&mut sink, 128 + 15).await),
            _ = hup.recv() => return Ok(close(&mut sink, 128 + 1).await),
        }
    }
    match exit_code {
        Some(code) => Ok(exit::from_remote(code, None)),
        None => bail!("the terminal closed without reporting an exit status"),
    }
}

/// Says goodbye to the server and returns `code`.
async fn close(sink: &mut futures::stream::SplitSink<Socket, Message>, code: i32) -> i32 {
    let _ = sink.send(Message::Close(None)).await;
    code
}

/// Reads stdin on its own OS thread (reads from a terminal cannot be
/// cancelled) and hands chunks over; the channel closes at end of input.
fn spawn_stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}
