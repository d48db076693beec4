//! The `sudo` command line, parsed as sudo does: options until the first
//! word that is not one (or `--`), then `NAME=value` words, then the
//! command. Options a sandbox has no use for (`-n`, `-S`, `-H`, `-P`, `-k`)
//! are accepted and change nothing: no password is ever asked for, and
//! `HOME` is always the target's.

use super::{Asked, Mode, Preserve};

pub const USAGE: &str = "usage: sudo [-EHiknSsv] [-u user] [--preserve-env=list] [VAR=value] [command [arg ...]]\n       sudo -l | -V | -h";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    Help,
    Version,
    /// `-k` alone: forget cached credentials (there are none).
    Nothing,
    Relay(Asked),
}

#[derive(Default)]
struct Flags {
    user: Option<String>,
    preserve: Option<Preserve>,
    login: bool,
    shell: bool,
    list: bool,
    validate: bool,
    reset: bool,
    help: bool,
    version: bool,
}

fn unsupported(option: &str) -> String {
    format!("option {option} is not supported in this sandbox")
}

impl Flags {
    /// Applies one short option; `value` yields its argument if it takes one.
    fn short(
        &mut self,
        c: char,
        value: &mut dyn FnMut() -> Result<String, String>,
    ) -> Result<(), String> {
        match c {
            'u' => self.user = Some(value()?),
            'E' => self.preserve = Some(Preserve::All),
            'i' => self.login = true,
            's' => self.shell = true,
            'l' => self.list = true,
            'v' => self.validate = true,
            'k' | 'K' => self.reset = true,
            'h' => self.help = true,
            'V' => self.version = true,
            'n' | 'S' | 'H' | 'P' | 'A' | 'B' => {}
            'g' | 'C' | 'D' | 'p' | 'r' | 't' | 'T' | 'U' | 'R' => {
                return Err(unsupported(&format!("-{c}")));
            }
            'b' | 'e' => return Err(unsupported(&format!("-{c}"))),
            other => return Err(format!("invalid option -- '{other}'")),
        }
        Ok(())
    }

    fn long(
        &mut self,
        name: &str,
        inline: Option<&str>,
        next: &mut dyn FnMut() -> Result<String, String>,
    ) -> Result<(), String> {
        let no_value = |flag: &mut bool| match inline {
            Some(_) => Err(format!("option '--{name}' doesn't allow an argument")),
            None => {
                *flag = true;
                Ok(())
            }
        };
        match name {
            "user" => {
                self.user = Some(match inline {
                    Some(v) => v.to_owned(),
                    None => next()?,
                })
            }
            "preserve-env" => {
                self.preserve = Some(match inline {
                    None => Preserve::All,
                    Some(list) => Preserve::Names(
                        list.split(',')
                            .filter(|n| !n.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    ),
                })
            }
            "login" => no_value(&mut self.login)?,
            "shell" => no_value(&mut self.shell)?,
            "list" => no_value(&mut self.list)?,
            "validate" => no_value(&mut self.validate)?,
            "reset-timestamp" | "remove-timestamp" => no_value(&mut self.reset)?,
            "help" => no_value(&mut self.help)?,
            "version" => no_value(&mut self.version)?,
            "non-interactive" | "stdin" | "set-home" | "preserve-groups" | "askpass" | "bell" => {
                let mut ignored = false;
                no_value(&mut ignored)?
            }
            other => return Err(format!("unrecognized option '--{other}'")),
        }
        Ok(())
    }
}

/// Whether `word` is a `NAME=value` assignment sudo takes before a command.
fn assignment(word: &str) -> Option<(String, String)> {
    let (name, value) = word.split_once('=')?;
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (name.to_owned(), value.to_owned()))
}

/// Parses the arguments after `sudo`.
pub fn parse(args: &[String]) -> Result<Invocation, String> {
    let mut flags = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "--" {
            i += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let mut next = || {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| format!("option '--{name}' requires an argument"))
            };
            flags.long(name, inline, &mut next)?;
            i += 1;
            continue;
        }
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        let chars: Vec<char> = arg[1..].chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            let rest: String = chars[j + 1..].iter().collect();
            let mut took_rest = false;
            let mut value = || {
                if rest.is_empty() {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("option requires an argument -- '{c}'"))
                } else {
                    took_rest = true;
                    Ok(rest.clone())
                }
            };
            flags.short(c, &mut value)?;
            if took_rest {
                break;
            }
            j += 1;
        }
        i += 1;
    }

    let mut assignments = Vec::new();
    while let Some(pair) = args.get(i).and_then(|w| assignment(w)) {
        assignments.push(pair);
        i += 1;
    }
    let command = args[i.min(args.len())..].to_vec();

    if flags.help {
        return Ok(Invocation::Help);
    }
    if flags.version {
        return Ok(Invocation::Version);
    }
    if flags.login && flags.shell {
        return Err("you may not specify both the -i and -s options".into());
    }
    let mode = if flags.list {
        Mode::List
    } else if flags.validate {
        Mode::Validate
    } else if flags.login {
        Mode::Login
    } else if flags.shell {
        Mode::Shell
    } else if command.is_empty() {
        return if flags.reset {
            Ok(Invocation::Nothing)
        } else {
            Err("a command is required".into())
        };
    } else {
        Mode::Run
    };
    Ok(Invocation::Relay(Asked {
        mode,
        user: flags.user,
        preserve: flags.preserve.unwrap_or(Preserve::Reset),
        assignments,
        command,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn relay(s: &str) -> Asked {
        match parse(&words(s)).unwrap() {
            Invocation::Relay(asked) => asked,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn options_stop_at_the_command() {
        let asked = relay("-n -E -u postgres FOO=1 psql -c -u select");
        assert_eq!(asked.mode, Mode::Run);
        assert_eq!(asked.user.as_deref(), Some("postgres"));
        assert_eq!(asked.preserve, Preserve::All);
        assert_eq!(asked.assignments, vec![("FOO".into(), "1".into())]);
        assert_eq!(asked.command, words("psql -c -u select"));
    }

    #[test]
    fn clustered_and_attached_values_and_long_forms() {
        assert_eq!(relay("-nEuuser id").user.as_deref(), Some("user"));
        assert_eq!(relay("--user=www id").user.as_deref(), Some("www"));
        assert_eq!(relay("--user www id").user.as_deref(), Some("www"));
        assert_eq!(
            relay("--preserve-env=A,B env").preserve,
            Preserve::Names(vec!["A".into(), "B".into()])
        );
        assert_eq!(relay("-- -weird").command, words("-weird"));
        assert_eq!(relay("-i").mode, Mode::Login);
        assert_eq!(relay("-s ls").mode, Mode::Shell);
        assert_eq!(relay("-l").mode, Mode::List);
        assert_eq!(relay("-v").mode, Mode::Validate);
        // A word with `=` after the command is the command's.
        assert_eq!(relay("env A=1").assignments, vec![]);
        assert_eq!(relay("1A=2 x").command, words("1A=2 x"));
    }

    #[test]
    fn bad_lines_are_errors_that_name_the_option() {
        assert!(
            parse(&words(""))
                .unwrap_err()
                .contains("command is required")
        );
        assert!(
            parse(&words("-u"))
                .unwrap_err()
                .contains("requires an argument")
        );
        assert!(parse(&words("-x ls")).unwrap_err().contains("'x'"));
        assert!(parse(&words("--frob ls")).unwrap_err().contains("--frob"));
        assert!(parse(&words("-g wheel ls")).unwrap_err().contains("-g"));
        assert!(parse(&words("-i -s")).unwrap_err().contains("-i and -s"));
        assert!(parse(&words("--login=1")).unwrap_err().contains("--login"));
        assert_eq!(parse(&words("-k")).unwrap(), Invocation::Nothing);
        assert_eq!(parse(&words("-h")).unwrap(), Invocation::Help);
        assert_eq!(parse(&words("-V")).unwrap(), Invocation::Version);
    }
}
