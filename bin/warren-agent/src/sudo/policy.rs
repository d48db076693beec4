//! Who may use the relay: root, and users the template's sudoers lets run
//! every command as anyone without a password.
//!
//! Read from `<etc>/sudoers` and the files it includes (`@include`,
//! `@includedir`, and their older `#` spellings; in an included directory,
//! files whose names contain `.` or end in `~` are skipped, as sudo does).
//! Only user specifications of the form `WHO HOST = (RUNAS) TAGS: ALL` are
//! understood, where WHO is a user name, `%group` or `ALL`. As in sudo, the
//! last specification that names the caller decides: it grants the relay
//! when its host is `ALL`, its run-as list is `ALL` (users, and groups if
//! given) and its tags include `NOPASSWD`. Anything else (aliases, command
//! lists, rules that need a password) grants nothing: with no password to
//! ask for, the relay refuses what it does not understand.

use std::path::{Path, PathBuf};

/// How deep includes may nest.
const MAX_DEPTH: usize = 8;

/// The caller, as the policy sees them.
pub struct Caller<'a> {
    pub name: &'a str,
    pub groups: &'a [String],
}

/// The deciding rule for `caller`, if any names them: whether it lets them
/// run anything as anyone without a password, and its text.
pub fn decide(etc: &Path, caller: &Caller<'_>) -> Option<(bool, String)> {
    let mut lines = Vec::new();
    read_into(&etc.join("sudoers"), 0, &mut lines);
    lines
        .iter()
        .rev()
        .filter_map(|line| rule(line))
        .find(|r| r.names(caller))
        .map(|r| (r.grants_all(), r.text.clone()))
}

/// Appends the logical lines of `path` (continuations joined, comments
/// dropped), with included files' lines in place.
fn read_into(path: &Path, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut pending = String::new();
    for raw in text.lines() {
        if let Some(joined) = raw.strip_suffix('\\') {
            pending.push_str(joined);
            pending.push(' ');
            continue;
        }
        pending.push_str(raw);
        let line = std::mem::take(&mut pending);
        let line = line.trim();
        if let Some(target) = include(line, "include") {
            read_into(&dir.join(target), depth + 1, out);
        } else if let Some(target) = include(line, "includedir") {
            for file in included_files(&dir.join(target)) {
                read_into(&file, depth + 1, out);
            }
        } else {
            let uncommented = line.split('#').next().unwrap_or("").trim();
            if !uncommented.is_empty() {
                out.push(uncommented.to_owned());
            }
        }
    }
}

/// The target of `@NAME target` or `#NAME target`.
fn include<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line
        .strip_prefix('@')
        .or_else(|| line.strip_prefix('#'))?
        .strip_prefix(name)?;
    rest.starts_with(char::is_whitespace)
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

fn included_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.contains('.') && !name.ends_with('~') && e.path().is_file()
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// One user specification.
struct Rule {
    who: Vec<String>,
    host: String,
    runas: String,
    tags: String,
    commands: String,
    text: String,
}

/// Parses `WHO HOST = (RUNAS) TAGS: COMMANDS`; `None` for other lines
/// (`Defaults`, aliases).
fn rule(line: &str) -> Option<Rule> {
    let first = line.split_whitespace().next()?;
    if first.starts_with("Defaults") || first.ends_with("_Alias") {
        return None;
    }
    let (left, right) = line.split_once('=')?;
    let mut left = left.split_whitespace();
    let who = left.next()?;
    let host = left.next()?.to_owned();
    if left.next().is_some() {
        return None;
    }
    let right = right.trim();
    let (runas, rest) = match right.strip_prefix('(') {
        Some(r) => {
            let (runas, rest) = r.split_once(')')?;
            (runas.trim().to_owned(), rest.trim())
        }
        None => ("root".to_owned(), right),
    };
    let (tags, commands) = match rest.rsplit_once(':') {
        Some((tags, commands)) => (tags.trim().to_owned(), commands.trim().to_owned()),
        None => (String::new(), rest.to_owned()),
    };
    let text = format!(
        "({}) {}{}",
        runas_display(right),
        if tags.is_empty() {
            String::new()
        } else {
            format!("{tags}: ")
        },
        commands
    );
    Some(Rule {
        who: who.split(',').map(|w| w.trim().to_owned()).collect(),
        host,
        runas,
        tags,
        commands,
        text,
    })
}

fn runas_display(right: &str) -> String {
    right
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .map(|(r, _)| r.split(':').map(str::trim).collect::<Vec<_>>().join(" : "))
        .unwrap_or_else(|| "root".into())
}

impl Rule {
    fn names(&self, caller: &Caller<'_>) -> bool {
        self.who.iter().any(|w| match w.strip_prefix('%') {
            Some(group) => caller.groups.iter().any(|g| g == group),
            None => w == "ALL" || w == caller.name,
        })
    }

    fn grants_all(&self) -> bool {
        let runas_all = self.runas.split(':').all(|part| part.trim() == "ALL");
        self.host == "ALL"
            && runas_all
            && self.commands == "ALL"
            && self.tags.split(':').any(|t| t.trim() == "NOPASSWD")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etc(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn allowed(dir: &tempfile::TempDir, name: &str, groups: &[&str]) -> bool {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        decide(
            dir.path(),
            &Caller {
                name,
                groups: &groups,
            },
        )
        .is_some_and(|(grants, _)| grants)
    }

    const DEBIAN: &str = "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /ignored-absolute\n#includedir sudoers.d\n";

    #[test]
    fn a_nopasswd_rule_in_sudoers_d_grants_and_the_debian_default_does_not() {
        let dir = etc(&[
            ("sudoers", DEBIAN),
            ("sudoers.d/user", "user ALL=(ALL:ALL) NOPASSWD: ALL\n"),
            ("sudoers.d/skipped.bak", "mallory ALL=(ALL) NOPASSWD: ALL\n"),
            ("sudoers.d/skipped~", "mallory ALL=(ALL) NOPASSWD: ALL\n"),
        ]);
        assert!(allowed(&dir, "user", &["user"]));
        // In group sudo, a password would be needed: refused.
        assert!(!allowed(&dir, "admin", &["sudo"]));
        assert!(!allowed(&dir, "mallory", &["mallory"]));
        assert!(!allowed(&dir, "nobody", &[]));
    }

    #[test]
    fn the_last_rule_naming_the_caller_decides() {
        let dir = etc(&[(
            "sudoers",
            "%dev ALL=(ALL) NOPASSWD: ALL\nbob ALL=(ALL) ALL\n",
        )]);
        assert!(allowed(&dir, "alice", &["dev"]));
        assert!(!allowed(&dir, "bob", &["dev"]));
    }

    #[test]
    fn narrower_rules_grant_nothing() {
        let dir = etc(&[(
            "sudoers",
            "a ALL=(ALL) NOPASSWD: /usr/bin/apt-get\nb ALL=(www) NOPASSWD: ALL\nc host1=(ALL) NOPASSWD: ALL\nd ALL = NOPASSWD: ALL\ne ALL=(ALL:ALL) NOPASSWD:SETENV: ALL\nf ALL=(ALL) \\\n  NOPASSWD: ALL\n",
        )]);
        for name in ["a", "b", "c", "d"] {
            assert!(!allowed(&dir, name, &[]), "{name}");
        }
        assert!(allowed(&dir, "e", &[]));
        assert!(allowed(&dir, "f", &[]), "a continued line");
    }

    #[test]
    fn includes_cannot_loop_for_ever_and_missing_files_grant_nothing() {
        let dir = etc(&[(
            "sudoers",
            "@include sudoers\nuser ALL=(ALL) NOPASSWD: ALL\n",
        )]);
        assert!(allowed(&dir, "user", &[]));
        let empty = etc(&[]);
        assert!(!allowed(&empty, "user", &[]));
    }

    #[test]
    fn the_deciding_rule_is_shown_as_sudo_lists_it() {
        let dir = etc(&[("sudoers", "user ALL=(ALL:ALL) NOPASSWD: ALL\n")]);
        let (grants, text) = decide(
            dir.path(),
            &Caller {
                name: "user",
                groups: &[],
            },
        )
        .unwrap();
        assert!(grants);
        assert_eq!(text, "(ALL : ALL) NOPASSWD: ALL");
    }
}
