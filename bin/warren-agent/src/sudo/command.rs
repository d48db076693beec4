//! What a relayed command runs as: its program, arguments, environment and
//! directory, built as sudo builds them with Debian's defaults
//! (`env_reset`, `secure_path`).
//!
//! - environment: the caller's variables are dropped except sudo's keep
//!   list (terminal, display, locale, time zone), all of them with `-E`,
//!   or the named ones with `--preserve-env=…`; then `HOME`, `SHELL`,
//!   `USER`, `LOGNAME` and `MAIL` of the target, `PATH` = the secure path,
//!   `SUDO_USER`, `SUDO_UID`, `SUDO_GID`, `SUDO_COMMAND`, and last the
//!   command line's `NAME=value` words;
//! - `-s` runs `$SHELL` (the caller's) or the target's shell, `-i` the
//!   target's shell as a login shell (`-bash`) in the target's home; with a
//!   command, the shell gets it with `-c`, each character but letters,
//!   digits, `_`, `-` and `$` escaped with a backslash, as sudo does.

use std::path::{Path, PathBuf};

use super::{Mode, Preserve, Request};
use crate::process::spawn::{SpawnError, resolve_program};
use crate::users::User;

/// sudo's `secure_path` on Debian.
pub const SECURE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables `env_reset` keeps (sudo's built-in list).
const KEPT: &[&str] = &[
    "COLORS",
    "COLORTERM",
    "DISPLAY",
    "HOSTNAME",
    "LANG",
    "LANGUAGE",
    "LINGUAS",
    "LS_COLORS",
    "PS1",
    "PS2",
    "TERM",
    "TZ",
    "XAUTHORITY",
    "XAUTHORIZATION",
    "XDG_CURRENT_DESKTOP",
];

/// A command ready to spawn.
#[derive(Debug, PartialEq, Eq)]
pub struct Prepared {
    pub program: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

fn kept(name: &str, preserve: &Preserve) -> bool {
    match preserve {
        Preserve::All => true,
        Preserve::Names(names) if names.iter().any(|n| n == name) => true,
        _ => KEPT.contains(&name) || name.starts_with("LC_"),
    }
}

/// Escapes `word` for the shell's `-c` as sudo does.
fn escape(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn var<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Builds what `request` runs as `target` for `caller`.
pub fn prepare(request: &Request, caller: &User, target: &User) -> Result<Prepared, SpawnError> {
    let shell_of = |user: &User| {
        if user.shell.is_empty() {
            "/bin/sh".to_owned()
        } else {
            user.shell.clone()
        }
    };
    let cwd = match request.asked.mode {
        Mode::Login => target.home.clone(),
        _ => PathBuf::from(&request.cwd),
    };
    let (program, argv) = match request.asked.mode {
        Mode::Shell | Mode::Login => {
            let shell = match request.asked.mode {
                Mode::Shell => var(&request.env, "SHELL")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .unwrap_or_else(|| shell_of(target)),
                _ => shell_of(target),
            };
            let name = Path::new(&shell)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| shell.clone());
            let argv0 = if request.asked.mode == Mode::Login {
                format!("-{name}")
            } else {
                name
            };
            let mut argv = vec![argv0];
            if !request.asked.command.is_empty() {
                let line: Vec<String> = request.asked.command.iter().map(|w| escape(w)).collect();
                argv.push("-c".into());
                argv.push(line.join(" "));
            }
            (resolve_program(&shell, SECURE_PATH, &cwd)?, argv)
        }
        _ => {
            let first = request
                .asked
                .command
                .first()
                .map(String::as_str)
                .unwrap_or("");
            (
                resolve_program(first, SECURE_PATH, &cwd)?,
                request.asked.command.clone(),
            )
        }
    };

    let mut env: Vec<(String, String)> = match request.asked.mode {
        Mode::Login => request
            .env
            .iter()
            .filter(|(k, _)| {
                k == "TERM"
                    || matches!(&request.asked.preserve, Preserve::Names(n) if n.contains(k))
            })
            .cloned()
            .collect(),
        _ => request
            .env
            .iter()
            .filter(|(k, _)| kept(k, &request.asked.preserve))
            .cloned()
            .collect(),
    };
    let mut set = |name: &str, value: String| {
        env.retain(|(k, _)| k != name);
        env.push((name.to_owned(), value));
    };
    set("HOME", target.home.display().to_string());
    set("SHELL", shell_of(target));
    set("USER", target.name.clone());
    set("LOGNAME", target.name.clone());
    set("MAIL", format!("/var/mail/{}", target.name));
    set("PATH", SECURE_PATH.to_owned());
    set("SUDO_USER", caller.name.clone());
    set("SUDO_UID", caller.uid.to_string());
    set("SUDO_GID", caller.gid.to_string());
    let mut command_line = vec![program.display().to_string()];
    command_line.extend(argv.iter().skip(1).cloned());
    set("SUDO_COMMAND", command_line.join(" "));
    for (k, v) in &request.asked.assignments {
        set(k, v.clone());
    }
    Ok(Prepared {
        program,
        argv,
        env,
        cwd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sudo::Asked;

    fn user(name: &str, uid: u32, home: &str) -> User {
        User {
            name: name.into(),
            uid,
            gid: uid,
            home: home.into(),
            shell: "/bin/sh".into(),
            groups: vec![uid],
        }
    }

    fn request(mode: Mode, preserve: Preserve, command: &[&str]) -> Request {
        Request {
            asked: Asked {
                mode,
                user: None,
                preserve,
                assignments: vec![("FOO".into(), "bar".into())],
                command: command.iter().map(|s| s.to_string()).collect(),
            },
            env: vec![
                ("TERM".into(), "xterm".into()),
                ("LC_ALL".into(), "C.UTF-8".into()),
                ("SECRET".into(), "x".into()),
                ("PATH".into(), "/home/user/evil".into()),
                ("SHELL".into(), "/bin/sh".into()),
            ],
            cwd: "/".into(),
        }
    }

    fn get<'a>(p: &'a Prepared, name: &str) -> Option<&'a str> {
        var(&p.env, name)
    }

    #[test]
    fn env_reset_keeps_the_terminal_and_locale_and_sets_the_target() {
        let p = prepare(
            &request(Mode::Run, Preserve::Reset, &["true"]),
            &user("user", 1000, "/home/user"),
            &user("root", 0, "/root"),
        )
        .unwrap();
        assert!(p.program.ends_with("true"));
        assert_eq!(p.argv, vec!["true"]);
        assert_eq!(get(&p, "TERM"), Some("xterm"));
        assert_eq!(get(&p, "LC_ALL"), Some("C.UTF-8"));
        assert_eq!(get(&p, "SECRET"), None);
        assert_eq!(get(&p, "PATH"), Some(SECURE_PATH));
        assert_eq!(get(&p, "HOME"), Some("/root"));
        assert_eq!(get(&p, "SUDO_USER"), Some("user"));
        assert_eq!(get(&p, "SUDO_UID"), Some("1000"));
        assert_eq!(get(&p, "FOO"), Some("bar"));
        assert_eq!(p.cwd, Path::new("/"));
    }

    #[test]
    fn preserve_keeps_the_callers_variables_but_not_its_path() {
        let p = prepare(
            &request(Mode::Run, Preserve::All, &["true"]),
            &user("user", 1000, "/home/user"),
            &user("root", 0, "/root"),
        )
        .unwrap();
        assert_eq!(get(&p, "SECRET"), Some("x"));
        assert_eq!(get(&p, "PATH"), Some(SECURE_PATH));
        let named = prepare(
            &request(Mode::Run, Preserve::Names(vec!["SECRET".into()]), &["true"]),
            &user("user", 1000, "/home/user"),
            &user("root", 0, "/root"),
        )
        .unwrap();
        assert_eq!(get(&named, "SECRET"), Some("x"));
    }

    #[test]
    fn shells_get_the_command_escaped_and_login_shells_the_home() {
        let p = prepare(
            &request(Mode::Shell, Preserve::Reset, &["echo", "a b;c", "$HOME"]),
            &user("user", 1000, "/home/user"),
            &user("root", 0, "/"),
        )
        .unwrap();
        assert_eq!(p.argv, vec!["sh", "-c", "echo a\\ b\\;c $HOME"]);
        let login = prepare(
            &request(Mode::Login, Preserve::Reset, &[]),
            &user("user", 1000, "/home/user"),
            &user("root", 0, "/"),
        )
        .unwrap();
        assert_eq!(login.argv, vec!["-sh"]);
        assert_eq!(login.cwd, Path::new("/"));
        assert_eq!(get(&login, "LC_ALL"), None);
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = prepare(
            &request(Mode::Run, Preserve::Reset, &["no-such-program-x"]),
            &user("user", 1000, "/home/user"),
            &user("root", 0, "/root"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no-such-program-x"));
    }
}
