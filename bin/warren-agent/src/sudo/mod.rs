//! `sudo` where the runtime ignores set-user-ID bits.
//!
//! gVisor before release 20250818 ignores set-user-ID bits (as if
//! no_new_privs were always set), so the template's real `sudo` cannot
//! raise anyone. There the runtime mounts this binary at
//! `/usr/local/bin/sudo` (ahead of `/usr/bin` in every `PATH` the agent
//! sets); run under the name `sudo`, it is a client ([`client`]) of a relay
//! the agent serves as root ([`relay`]). The sandbox's boundary does not
//! move: root inside a sandbox is what the API's `user: root` already gives,
//! and only callers the template's sudoers lets run everything without a
//! password ([`policy`]) get it, as with the real `sudo`.
//!
//! Protocol, on the stream socket [`SOCKET`] (under the agent's root):
//! 1. The client sends one JSON [`Request`] line; the message carrying its
//!    first byte also carries the client's fds 0, 1 and 2 (`SCM_RIGHTS`)
//!    and its credentials (`SCM_CREDENTIALS`).
//! 2. The relay takes the caller's uid from those credentials, which the
//!    kernel checks (a process may claim another uid only with
//!    `CAP_SETUID`, that is as root), never from the request, and checks
//!    the policy. Not from `SO_PEERCRED`: gVisor 20240729 answers it with
//!    the asking process's own credentials.
//! 3. It runs the command as the target user in a session of its own, with
//!    the client's three fds as its stdio, and answers one [`Reply`] line:
//!    how the command ended, or why it could not run.
//! 4. Meanwhile the client forwards the signals it gets as
//!    [`Forward`] lines; the relay sends them to the command's process
//!    group. A client that goes away (killed, or its connection closed)
//!    takes the command with it: the group gets SIGKILL.

pub mod args;
pub mod client;
pub mod command;
pub mod policy;
pub mod relay;

use serde::{Deserialize, Serialize};

/// The relay's socket, relative to the agent's root.
pub const SOCKET: &str = "run/warren-sudo.sock";
/// Where the client looks for the relay (overridable for tests).
pub const SOCKET_ENV: &str = "WARREN_SUDO_SOCKET";
/// The longest request line the relay reads.
pub const MAX_REQUEST: usize = 1 << 20;

/// What the caller asked `sudo` to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Run the command.
    Run,
    /// `-s`: the caller's shell, the command given to it with `-c`.
    Shell,
    /// `-i`: the target's login shell in its home directory.
    Login,
    /// `-l`: print what the caller may run.
    List,
    /// `-v`: check the caller may run commands, run nothing.
    Validate,
}

/// Which of the caller's variables the command keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preserve {
    /// sudo's `env_reset`: a short list of terminal and locale variables.
    Reset,
    /// `-E`: all of them.
    All,
    /// `--preserve-env=A,B`: those and the reset list.
    Names(Vec<String>),
}

/// What the command line asks for (`args`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    pub mode: Mode,
    /// The target user (`-u`); root when absent.
    pub user: Option<String>,
    pub preserve: Preserve,
    /// `NAME=value` arguments given before the command.
    pub assignments: Vec<(String, String)>,
    /// The command and its arguments; empty for a bare `-i` or `-s`.
    pub command: Vec<String>,
}

/// One `sudo` invocation, as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    #[serde(flatten)]
    pub asked: Asked,
    /// The caller's environment.
    pub env: Vec<(String, String)>,
    /// The caller's working directory.
    pub cwd: String,
}

/// The relay's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The command exited with this code.
    Exit(i32),
    /// The command was killed by this signal.
    Signal(i32),
    /// Text for the caller's standard output (`-l`), followed by an exit.
    Print(String),
    /// Nothing ran: why.
    Error(String),
}

/// What the client sends after its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forward {
    Signal(i32),
}
