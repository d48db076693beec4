//! What the fake agent runs: a [`CommandHandler`] the test installs, then
//! a tiny built-in set.
//!
//! Built-ins (argv as given, no shell, no `PATH`):
//! - `echo ARGS…` prints its arguments;
//! - `true`, `false` end with 0 and 1;
//! - `cat PATH` prints a file of the agent's in-memory filesystem;
//! - `sleep …` runs until it is signalled (or its instance ends);
//! - `kill -9 1` kills PID 1: the instance's processes all end, as when
//!   root inside a real sandbox does it.
//!
//! Anything else ends with 127 and says so on stderr.

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
}

/// The built-in for `command`; `read` gives a file's content.
pub(super) fn builtin(command: &ProcessConfig, read: impl Fn(&str) -> Option<Vec<u8>>) -> Builtin {
    let args: Vec<&str> = command.args.iter().map(String::as_str).collect();
    match (command.cmd.as_str(), args.as_slice()) {
        ("echo", args) => Builtin::Done(CommandOutput::ok(format!("{}\n", args.join(" ")))),
        ("true", _) => Builtin::Done(CommandOutput::ok("")),
        ("false", _) => Builtin::Done(CommandOutput::failed(1, "")),
        ("cat", [path]) => Builtin::Done(match read(path) {
            Some(bytes) => CommandOutput::ok(bytes),
            None => CommandOutput::failed(1, format!("cat: {path}: No such file or directory\n")),
        }),
        ("sleep", _) => Builtin::LongRunning,
        ("kill", ["-9", "1"]) => Builtin::KillInit,
        (cmd, _) => Builtin::Done(CommandOutput::failed(
            127,
            format!("{cmd}: not a command of the fake agent\n"),
        )),
    }
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
        let none = |_: &str| None;
        assert_eq!(
            builtin(&cmd("echo", &["a", "b"]), none),
            Builtin::Done(CommandOutput::ok("a b\n"))
        );
        assert_eq!(
            builtin(&cmd("cat", &["/x"]), |p| (p == "/x").then(|| b"x".to_vec())),
            Builtin::Done(CommandOutput::ok("x"))
        );
        assert_eq!(builtin(&cmd("sleep", &["600"]), none), Builtin::LongRunning);
        assert_eq!(builtin(&cmd("kill", &["-9", "1"]), none), Builtin::KillInit);
        let Builtin::Done(out) = builtin(&cmd("bash", &[]), none) else {
            panic!("bash is no built-in");
        };
        assert_eq!(out.exit_code, 127);
    }
}
