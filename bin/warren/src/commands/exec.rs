//! `warren exec`: run a command in a sandbox, streaming its output.
//!
//! The command's stdout and stderr bytes are written to the CLI's own stdout
//! and stderr as they arrive (flushed per chunk), and the CLI exits with the
//! command's exit code (see [`crate::exit`]).

use std::io::{self, Read};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use warren_api_types::{ExecEvent, ExecRequest};
use warren_core::SandboxId;

use super::Ctx;
use crate::output::{write_stderr, write_stdout};
use crate::{exit, parse};

/// Run a command in a sandbox and stream its output.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The command runs directly, without a shell; ask for one when you need it.
Exits with the command's exit code (128+N when killed by signal N).

Examples:
  warren exec $ID -- ls -la /home/user
  warren exec $ID -- bash -lc 'cd /tmp && make test'
  echo 'print(6 * 7)' | warren exec $ID --stdin -- python3
  warren exec $ID --cwd /srv --user root --env DEBUG=1 -- ./run.sh")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// Environment variable for the command; repeatable.
    #[arg(short, long = "env", value_name = "KEY=VALUE", value_parser = parse::key_value)]
    env: Vec<(String, String)>,
    /// Working directory [default: the user's home].
    #[arg(short = 'w', long, value_name = "DIR")]
    cwd: Option<String>,
    /// User to run as [default: user].
    #[arg(short, long, value_name = "USER")]
    user: Option<String>,
    /// Read this program's stdin to the end and pass it to the command (text only).
    #[arg(long)]
    stdin: bool,
    /// The command and its arguments (put them after `--`).
    #[arg(
        value_name = "CMD",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) cmd: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    let stdin = if args.stdin {
        Some(read_stdin()?)
    } else {
        None
    };
    let req = ExecRequest {
        cmd: args.cmd,
        env: parse::into_map(&args.env),
        cwd: args.cwd,
        user: args.user,
        stdin,
    };
    let mut events = client.exec(&args.id, &req).await?;
    while let Some(event) = events.next().await? {
        if ctx.out.json {
            ctx.out.json(&event)?;
        }
        match event {
            ExecEvent::Start { .. } => {}
            ExecEvent::Stdout { data } if !ctx.out.json => write_stdout(&decode(&data)?)?,
            ExecEvent::Stderr { data } if !ctx.out.json => write_stderr(&decode(&data)?)?,
            ExecEvent::Stdout { .. } | ExecEvent::Stderr { .. } => {}
            ExecEvent::Exit {
                exit_code,
                signal,
                error,
            } => {
                if let Some(error) = error {
                    ctx.out
                        .error(&format!("the command could not run: {error}"));
                    return Ok(exit::FAILURE);
                }
                return Ok(exit::from_remote(exit_code, signal.as_deref()));
            }
        }
    }
    bail!(
        "the daemon ended the output stream before the command's exit status arrived; the command may still be running"
    )
}

/// Decodes one base64 output chunk.
fn decode(data: &str) -> anyhow::Result<Vec<u8>> {
    BASE64
        .decode(data)
        .context("the daemon sent output that is not valid base64")
}

fn read_stdin() -> anyhow::Result<String> {
    let mut buf = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .context("cannot read stdin")?;
    String::from_utf8(buf).map_err(|_| {
        anyhow::anyhow!(
            "stdin is not valid UTF-8 text; `--stdin` passes text only (upload binary data with `warren cp`)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_decoded_raw() {
        let raw = [0u8, 255, b'\n', 0xc3];
        assert_eq!(decode(&BASE64.encode(raw)).unwrap(), raw);
        assert!(decode("not base64!").is_err());
    }
}
