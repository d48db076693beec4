//! `warren secret`: the team's secrets, which sandboxes use without ever
//! seeing them (the egress proxy puts them into requests to named hosts).

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use warren_api_types::Secret;

use super::Ctx;
use crate::exit;

/// Team secrets. A sandbox's network policy names a secret and a host; the
/// proxy adds the value to requests to that host and the sandbox only ever
/// sees a placeholder. Values are never shown again once set.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SecretCommand,
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Create a secret or replace its value (needs secrets:manage).
    #[command(after_help = "\
The value is read from standard input (one trailing newline is dropped), or
typed at a hidden prompt when standard input is a terminal. --value puts it
on the command line, where shell history and `ps` can see it.

Examples:
  warren secret set github-token < token.txt
  printf %s \"$TOKEN\" | warren secret set github-token
  warren secret set github-token --from-file ~/.config/gh/token")]
    Set {
        /// 1-63 letters, digits, '_', '.' or '-'.
        name: String,
        /// Read the value from this file.
        #[arg(long, value_name = "FILE", conflicts_with = "value")]
        from_file: Option<PathBuf>,
        /// The value itself (visible in shell history and to other users' `ps`).
        #[arg(long, value_name = "VALUE")]
        value: Option<String>,
    },
    /// List the team's secrets: names and times, never values.
    #[command(
        after_help = "Examples:\n  warren secret ls\n  warren secret ls --json | jq -r '.secrets[].name'"
    )]
    Ls,
    /// Delete a secret (needs secrets:manage).
    #[command(after_help = "Examples:\n  warren secret rm github-token")]
    Rm { name: String },
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        SecretCommand::Set {
            name,
            from_file,
            value,
        } => {
            let value = match (value, from_file) {
                (Some(v), _) => v,
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    drop_one_newline(text)
                }
                (None, None) => read_value(&name)?,
            };
            let (secret, created) = client.set_secret(&name, value).await?;
            if ctx.out.json {
                ctx.out.json(&secret)?;
            } else {
                ctx.out.line(&secret.name)?;
                ctx.out.note(if created {
                    "secret created"
                } else {
                    "secret value replaced"
                });
            }
        }
        SecretCommand::Ls => {
            let list = client.secrets().await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                let rows = list.secrets.into_iter().map(secret_row).collect();
                ctx.out
                    .table(&["NAME", "CREATED", "UPDATED", "UPDATED BY"], rows)?;
            }
        }
        SecretCommand::Rm { name } => {
            client.delete_secret(&name).await?;
            if ctx.out.json {
                ctx.out
                    .json(&serde_json::json!({ "name": name, "deleted": true }))?;
            } else {
                ctx.out.line(&name)?;
            }
        }
    }
    Ok(exit::OK)
}

fn secret_row(s: Secret) -> Vec<String> {
    vec![s.name, s.created_at, s.updated_at, s.updated_by]
}

/// `text` without one trailing `\n` (or `\r\n`), as files and `echo` end.
fn drop_one_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// The value from standard input, or from a hidden prompt on a terminal.
fn read_value(name: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut text = String::new();
        stdin
            .lock()
            .read_to_string(&mut text)
            .context("cannot read the secret value from standard input")?;
        return Ok(drop_one_newline(text));
    }
    eprint!("value of secret {name} (hidden): ");
    let _ = std::io::stderr().flush();
    crossterm::terminal::enable_raw_mode().context("cannot switch the terminal to raw mode")?;
    let typed = read_hidden_line();
    let _ = crossterm::terminal::disable_raw_mode();
    eprintln!();
    typed
}

fn read_hidden_line() -> anyhow::Result<String> {
    let mut text = String::new();
    loop {
        let event = crossterm::event::read().context("cannot read from the terminal")?;
        let Event::Key(KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            ..
        }) = event
        else {
            continue;
        };
        match code {
            KeyCode::Enter => return Ok(text),
            KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => {
                anyhow::bail!("cancelled; no secret was set")
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) => text.push(c),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_dropped() {
        assert_eq!(drop_one_newline("abc\n".into()), "abc");
        assert_eq!(drop_one_newline("abc\r\n".into()), "abc");
        assert_eq!(drop_one_newline("abc\n\n".into()), "abc\n");
        assert_eq!(drop_one_newline("abc".into()), "abc");
    }
}
