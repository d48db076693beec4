//! What the fake agent runs: a [`CommandHandler`] the test installs, then
//! a tiny built-in set.
//!
//! Built-ins (argv as given, no shell, no `PATH`):
//! - `echo ARGS…` prints its arguments;
//! - `true`, `false` end with 0 and 1; `exit N` ends with `N`;
//! - `cat PATH` prints a file of the agent's in-memory filesystem; `cat`
//!   alone copies its stdin to stdout as it arrives, until stdin closes;
//! - `env` prints the process's environment (the agent's from `/init`,
//!   then the command's own, sorted), then `cwd=…` and `user=…`;
//! - `sleep …` runs until it is signalled (or its instance ends);
//! - `wait-for PATH` prints `waiting for PATH`, runs until a file `PATH`
//!   exists, prints `PATH is there` and ends with 0: output that arrives
//!   while the command runs, ended by the test without timing;
//! - `kill -9 1` kills PID 1: the instance's processes all end, as when
//!   root inside a real sandbox does it.
//!
//! Anything else ends with 127 and says so on stderr. A command started
//! with stdin open that ends at once ends only once its stdin is closed
//! (its output comes then); one started with a PTY is a terminal, whatever
//! its name (see `interactive`).

use warren_envd::process::ProcessConfig;

/// How a finished command ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    /// Exit 0 with `stdout`.
    pub fn ok(stdout: impl Into<Vec<u8>>) -> Self {
        Self {
            exit_code: 0,
            stdout: stdout.into(),
            stderr: Vec::new(),
        }
    }

    /// Exit `code` with `stderr`.
    pub fn failed(code: i32, stderr: impl Into<Vec<u8>>) -> Self {
        Self {
            exit_code: code,
            stdout: Vec::new(),
            stderr: stderr.into(),
        }
    }
}

/// Runs commands before the built-ins: `Some` answers the command, `None`
/// leaves it to the built-ins. Any `Fn(&ProcessConfig) -> Option<CommandOutput>`
/// is one.
pub trait CommandHandler: Send + Sync {
    fn run(&self, command: &ProcessConfig) -> Option<CommandOutput>;
}

impl<F> CommandHandler for F
where
    F: Fn(&ProcessConfig) -> Option<CommandOutput> + Send + Sync,
{
    fn run(&self, command: &ProcessConfig) -> Option<CommandOutput> {
        self(command)
    }
}

/// What a built-in does.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Builtin {
    /// Ends at once.
    Done(CommandOutput),
    /// Runs until signalled.
    LongRunning,
    /// Ends every process of the instance.
    KillInit,
    /// Copies stdin to stdout until stdin closes.
    EchoStdin,
    /// Runs until the file exists.
    WaitFor(String),
}

/// What a built-in sees of the agent and the request.
pub(super) struct Inside<'a> {
    /// A file of the agent's filesystem.
    pub read: &'a dyn Fn(&str) -> Option<Vec<u8>>,
    /// The agent's environment for children (from `/init`).
    pub env: &'a std::collections::BTreeMap<String, String>,
    /// The user the call acts as, if it names one.
    pub user: Option<&'a str>,
}

/// The built-in for `command`, run `inside` the agent.
pub(super) fn builtin(command: &ProcessConfig, inside: &Inside<'_>) -> Builtin {
    let args: Vec<&str> = command.args.iter().map(String::as_str).collect();
    match (command.cmd.as_str(), args.as_slice()) {
        ("echo", args) => Builtin::Done(CommandOutput::ok(format!("{}\n", args.join(" ")))),
        ("true", _) => Builtin::Done(CommandOutput::ok("")),
        ("false", _) => Builtin::Done(CommandOutput::failed(1, "")),
        ("exit", [code]) => match code.parse() {
            Ok(code) => Builtin::Done(CommandOutput::failed(code, "")),
            Err(_) => Builtin::Done(CommandOutput::failed(2, "exit: not a number\n")),
        },
        ("cat", []) => Builtin::EchoStdin,
        ("cat", [path]) => Builtin::Done(match (inside.read)(path) {
            Some(bytes) => CommandOutput::ok(bytes),
            None => CommandOutput::failed(1, format!("cat: {path}: No such file or directory\n")),
        }),
        ("env", []) => Builtin::Done(CommandOutput::ok(env_output(command, inside))),
        ("wait-for", [path]) => Builtin::WaitFor((*path).to_owned()),
        ("sleep", _) => Builtin::LongRunning,
        ("kill", ["-9", "1"]) => Builtin::KillInit,
        (cmd, _) => Builtin::Done(CommandOutput::failed(
            127,
            format!("{cmd}: not a command of the fake agent\n"),
        )),
    }
}

/// What `env` prints.
fn env_output(command: &ProcessConfig, inside: &Inside<'_>) -> String {
    let mut env = inside.env.clone();
    env.extend(command.envs.clone());
    let mut out: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    out += &format!(
        "cwd={}\nuser={}\n",
        command.cwd.as_deref().unwrap_or("/"),
        inside.user.unwrap_or("user")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(cmd: &str, args: &[&str]) -> ProcessConfig {
        ProcessConfig {
            cmd: cmd.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            ..ProcessConfig::default()
        }
    }

    #[test]
    fn builtins_answer_and_the_rest_is_127() {
        let read = |p: &str| (p == "/x").then(|| b"x".to_vec());
        let env = [("A".to_owned(), "1".to_owned())].into();
        let inside = Inside {
            read: &read,
            env: &env,
            user: Some("root"),
        };
        assert_eq!(
            builtin(&cmd("echo", &["a", "b"]), &inside),
            Builtin::Done(CommandOutput::ok("a b\n"))
        );
        assert_eq!(
            builtin(&cmd("cat", &["/x"]), &inside),
            Builtin::Done(CommandOutput::ok("x"))
        );
        assert_eq!(builtin(&cmd("cat", &[]), &inside), Builtin::EchoStdin);
        assert_eq!(
            builtin(&cmd("exit", &["42"]), &inside),
            Builtin::Done(CommandOutput::failed(42, ""))
        );
        let mut with_env = cmd("env", &[]);
        with_env.envs.insert("B".into(), "2".into());
        with_env.cwd = Some("/srv".into());
        assert_eq!(
            builtin(&with_env, &inside),
            Builtin::Done(CommandOutput::ok("A=1\nB=2\ncwd=/srv\nuser=root\n"))
        );
        assert_eq!(
            builtin(&cmd("wait-for", &["/go"]), &inside),
            Builtin::WaitFor("/go".into())
        );
        assert_eq!(
            builtin(&cmd("sleep", &["600"]), &inside),
            Builtin::LongRunning
        );
        assert_eq!(
            builtin(&cmd("kill", &["-9", "1"]), &inside),
            Builtin::KillInit
        );
        let Builtin::Done(out) = builtin(&cmd("bash", &[]), &inside) else {
            panic!("bash is no built-in");
        };
        assert_eq!(out.exit_code, 127);
    }
}
