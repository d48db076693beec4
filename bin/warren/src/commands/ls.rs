//! `warren ls`: list sandboxes.

use time::OffsetDateTime;
use warren_core::SandboxState;

use super::Ctx;
use crate::output::{human_mib, relative_time};
use crate::{exit, parse};

/// List sandboxes.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  warren ls
  warren ls --state running --state paused
  warren ls --metadata owner=alice --json")]
pub struct Args {
    /// Only sandboxes in this state; repeatable (creating, running, paused, killed, ...).
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    state: Vec<String>,
    /// Only sandboxes carrying this label; repeatable (all must match).
    #[arg(short, long, value_name = "KEY=VALUE", value_parser = parse::key_value)]
    metadata: Vec<(String, String)>,
}

fn parse_state(raw: &str) -> Result<String, String> {
    raw.parse::<SandboxState>()
        .map(|s| s.as_str().to_owned())
        .map_err(|e| e.message)
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    let list = client.list(&args.state, &args.metadata).await?;
    if ctx.out.json {
        ctx.out.json(&list)?;
        return Ok(exit::OK);
    }
    if list.sandboxes.is_empty() {
        ctx.out.note("no sandboxes");
        return Ok(exit::OK);
    }
    let now = OffsetDateTime::now_utc();
    let rows = list
        .sandboxes
        .into_iter()
        .map(|s| {
            vec![
                s.id,
                s.template,
                s.state,
                s.cpus.to_string(),
                human_mib(s.memory_mb),
                human_mib(s.disk_mb),
                relative_time(&s.created_at, now),
                relative_time(&s.expires_at, now),
            ]
        })
        .collect();
    ctx.out.table(
        &[
            "ID", "TEMPLATE", "STATE", "CPUS", "MEMORY", "DISK", "CREATED", "EXPIRES",
        ],
        rows,
    )?;
    Ok(exit::OK)
}
