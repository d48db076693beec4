//! `warren timer`: events a sandbox's inbox gets at a set time.

use anyhow::Context as _;
use clap::Subcommand;
use warren_api_types::{CreateTimerRequest, Timer, TimerEvent};
use warren_core::SandboxId;

use super::Ctx;
use crate::{exit, parse};

/// Set a timer on a sandbox: at the time, its event lands in the sandbox's
/// inbox (durably: a daemon restart does not lose it).
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "\
Examples:
  warren timer $ID --after 1h --type reminder
  warren timer $ID --at 2030-01-01T09:00:00Z --type standup --data @standup.json
  warren timer ls $ID
  warren timer rm $ID tmr_0123..."
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<TimerCommand>,
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id, required = true)]
    id: Option<SandboxId>,
    /// Fire this long from now: seconds (300) or 5m, 1h30m, 2d.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration_secs, required_unless_present = "at")]
    after: Option<u64>,
    /// Fire at this time (RFC 3339).
    #[arg(long, value_name = "TIME", conflicts_with = "after")]
    at: Option<String>,
    /// The event's type, e.g. reminder.
    #[arg(long = "type", value_name = "TYPE", required = true)]
    kind: Option<String>,
    /// The event's source (default: timer).
    #[arg(long, value_name = "SOURCE")]
    source: Option<String>,
    /// The event's data: JSON, or @FILE to read it from a file.
    #[arg(long, value_name = "JSON|@FILE")]
    data: Option<String>,
}

#[derive(Debug, Subcommand)]
enum TimerCommand {
    /// List a sandbox's pending timers, soonest first.
    Ls {
        #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
        id: SandboxId,
    },
    /// Delete a pending timer.
    Rm {
        #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
        id: SandboxId,
        timer: String,
    },
}

fn read_data(raw: Option<String>) -> anyhow::Result<serde_json::Value> {
    let Some(raw) = raw else {
        return Ok(serde_json::Value::Null);
    };
    let (text, from) = match raw.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
            path.to_owned(),
        ),
        None => (raw, "--data".to_owned()),
    };
    serde_json::from_str(&text).with_context(|| format!("{from} is not JSON"))
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        Some(TimerCommand::Ls { id }) => {
            let list = client.timers(&id).await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                let rows = list.timers.into_iter().map(timer_row).collect();
                ctx.out.table(&["ID", "FIRES AT", "TYPE", "SOURCE"], rows)?;
            }
        }
        Some(TimerCommand::Rm { id, timer }) => {
            client.delete_timer(&id, &timer).await?;
            if ctx.out.json {
                ctx.out
                    .json(&serde_json::json!({ "id": timer, "deleted": true }))?;
            } else {
                ctx.out.line(&timer)?;
            }
        }
        None => {
            let id = args.id.context("name the sandbox")?;
            let req = CreateTimerRequest {
                at: args.at,
                after: args.after.map(serde_json::Value::from),
                event: TimerEvent {
                    kind: args.kind.context("name the event's --type")?,
                    source: args.source,
                    data: read_data(args.data)?,
                },
            };
            let timer = client.create_timer(&id, &req).await?;
            if ctx.out.json {
                ctx.out.json(&timer)?;
            } else {
                ctx.out.line(&timer.id)?;
                ctx.out.note(&format!("fires at {}", timer.fires_at));
            }
        }
    }
    Ok(exit::OK)
}

fn timer_row(t: Timer) -> Vec<String> {
    vec![t.id, t.fires_at, t.kind, t.source]
}
