//! `sudo` as its caller runs it: parses the command line, hands the
//! request and fds 0–2 to the relay, forwards the signals it gets, and
//! ends as the command ended (its exit code, or killed by its signal).

use std::io::{BufRead, BufReader, IoSlice, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, raise, sigaction};
use nix::sys::socket::{ControlMessage, MsgFlags, UnixCredentials, sendmsg};

use super::args::{Invocation, USAGE, parse};
use super::{Reply, Request, SOCKET, SOCKET_ENV};

/// Signals passed on to the command.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The relay connection, for the signal handler.
static RELAY_FD: AtomicI32 = AtomicI32::new(-1);

/// Runs `sudo ARGS` and exits.
pub fn main(args: Vec<String>) -> ! {
    let code = run(&args).unwrap_or_else(|message| {
        eprintln!("sudo: {message}");
        1
    });
    std::process::exit(code)
}

fn run(args: &[String]) -> Result<i32, String> {
    let asked = match parse(args).map_err(|m| format!("{m}\n{USAGE}"))? {
        Invocation::Help => {
            println!("{USAGE}");
            return Ok(0);
        }
        Invocation::Version => {
            println!(
                "sudo relay of warren-agent {}: runs commands through the sandbox's agent",
                env!("CARGO_PKG_VERSION")
            );
            return Ok(0);
        }
        Invocation::Nothing => return Ok(0),
        Invocation::Relay(asked) => asked,
    };
    let request = Request {
        asked,
        env: std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect(),
        cwd: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| "/".into()),
    };
    let path = std::env::var(SOCKET_ENV).unwrap_or_else(|_| format!("/{SOCKET}"));
    let stream = UnixStream::connect(&path)
        .map_err(|e| format!("cannot reach the sandbox's agent at {path}: {e}"))?;
    let mut line = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    line.push(b'\n');
    open_missing_stdio();
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&line)],
        &[
            ControlMessage::ScmRights(&[0, 1, 2]),
            ControlMessage::ScmCredentials(&UnixCredentials::new()),
        ],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("sending the request to the agent: {e}"))?;
    (&stream)
        .write_all(&line[sent..])
        .map_err(|e| format!("sending the request to the agent: {e}"))?;
    forward_signals(stream.as_raw_fd());

    let mut reader = BufReader::new(&stream);
    let mut reply = String::new();
    match reader.read_line(&mut reply) {
        Ok(n) if n > 0 => {}
        _ => return Err("the sandbox's agent ended the command without saying how".into()),
    }
    match serde_json::from_str(&reply).map_err(|e| format!("a reply it cannot read: {e}"))? {
        Reply::Exit(code) => Ok(code),
        Reply::Print(text) => {
            print!("{text}");
            Ok(0)
        }
        Reply::Error(message) => Err(message),
        Reply::Signal(sig) => {
            // End the way the command did, so the caller's shell sees it.
            if let Ok(signal) = Signal::try_from(sig) {
                let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
                // SAFETY: restoring the default disposition.
                let _ = unsafe { sigaction(signal, &default) };
                let _ = raise(signal);
            }
            Ok(128 + sig)
        }
    }
}

/// Opens `/dev/null` on any of fds 0–2 that is closed, so all three can be
/// sent.
fn open_missing_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            // SAFETY: a NUL-terminated path; `open` takes the lowest free
            // descriptor, which is `fd`.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

extern "C" fn forward(sig: libc::c_int) {
    let fd: RawFd = RELAY_FD.load(Ordering::Relaxed);
    // `{"signal": N}` with N right-aligned in two places: valid JSON, no
    // allocation (this runs in a signal handler).
    let mut line = *b"{\"signal\":  }\n";
    let sig = sig.clamp(0, 99) as u8;
    if sig >= 10 {
        line[10] = b'0' + sig / 10;
    }
    line[11] = b'0' + sig % 10;
    // SAFETY: write(2) is async-signal-safe; `line` lives on this stack.
    unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
}

fn forward_signals(fd: RawFd) {
    RELAY_FD.store(fd, Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in FORWARDED {
        // SAFETY: `forward` only makes async-signal-safe calls.
        let _ = unsafe { sigaction(signal, &action) };
    }
}
