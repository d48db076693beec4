//! `warren events`: a sandbox's inbox — send an event, list them, say
//! which ones wake it.

use std::io::Read as _;

use anyhow::Context as _;
use clap::Subcommand;
use warren_api_types::{SendEventRequest, WakeRequest};
use warren_core::SandboxId;

use super::Ctx;
use crate::{exit, parse};

/// A sandbox's inbox: events from outside (CI results, reviews, timers)
/// kept in order until a process inside takes them (docs/events.md).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Put an event in the sandbox's inbox (needs events:send); a paused
    /// sandbox wakes if its wake policy names the type.
    #[command(after_help = "\
Examples:
  warren events send $ID --type ci.finished --data '{\"status\": \"green\"}'
  warren events send $ID --type review.comment --data @comment.json
  gh api repos/o/r/pulls/7 | warren events send $ID --type pr.updated --data -")]
    Send {
        #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
        id: SandboxId,
        /// What happened: letters, digits and . _ : / - (e.g. ci.finished).
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
        /// Who says so [default: cli].
        #[arg(long, default_value = "cli")]
        source: String,
        /// JSON payload: inline, @FILE, or - for standard input.
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
        /// A retry with the same key gets the first event back.
        #[arg(long, value_name = "KEY")]
        dedupe_key: Option<String>,
    },
    /// List the inbox in order with each event's delivery state.
    #[command(after_help = "\
Examples:
  warren events ls $ID
  warren events ls $ID --after 100 --json | jq '.events[].type'")]
    Ls {
        #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
        id: SandboxId,
        /// Only events numbered above this.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Say which event types resume the sandbox when it is paused.
    #[command(after_help = "\
Examples:
  warren events wake $ID 'github.*,ci.finished'
  warren events wake $ID none          events wait for the next resume
  warren events wake $ID '*'           every event (the default)")]
    Wake {
        #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
        id: SandboxId,
        /// Comma-separated types or prefixes ending in *; `none` for never.
        patterns: String,
    },
}

/// `--data`: inline JSON, `@FILE`, or `-` for standard input.
fn read_data(data: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let text = match data {
        None => return Ok(serde_json::Value::Null),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the payload from standard input")?;
            text
        }
        Some(arg) => match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the payload file {path}"))?,
            None => arg.to_owned(),
        },
    };
    serde_json::from_str(&text).context("--data is not JSON (use @FILE to read a file)")
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        EventsCommand::Send {
            id,
            kind,
            source,
            data,
            dedupe_key,
        } => {
            let event = SendEventRequest {
                kind,
                source,
                data: read_data(data.as_deref())?,
                dedupe_key,
            };
            let accepted = client.send_event(&id, &event).await?;
            if ctx.out.json {
                ctx.out.json(&accepted)?;
            } else {
                ctx.out.line(&accepted.seq.to_string())?;
                if accepted.duplicate {
                    ctx.out
                        .note("already in the inbox under this dedupe key: nothing new was sent");
                }
            }
        }
        EventsCommand::Ls { id, after, limit } => {
            let list = client.events(&id, after, limit).await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
                return Ok(exit::OK);
            }
            let rows = list
                .events
                .into_iter()
                .map(|e| {
                    vec![
                        e.seq.to_string(),
                        e.received_at,
                        e.kind,
                        e.source,
                        e.delivery,
                    ]
                })
                .collect();
            ctx.out
                .table(&["SEQ", "RECEIVED", "TYPE", "SOURCE", "DELIVERY"], rows)?;
            if let Some(next) = list.next_after {
                ctx.out
                    .note(&format!("more: warren events ls {id} --after {next}"));
            }
        }
        EventsCommand::Wake { id, patterns } => {
            let on = super::create::wake_policy(&patterns).on;
            let policy = client.set_wake(&id, &WakeRequest { on }).await?;
            if ctx.out.json {
                ctx.out.json(&policy)?;
            } else if policy.on.is_empty() {
                ctx.out.line("no event wakes the sandbox")?;
            } else {
                ctx.out.line(&policy.on.join(","))?;
            }
        }
    }
    Ok(exit::OK)
}
