//! `warren info`: show one sandbox.

use time::OffsetDateTime;
use warren_core::SandboxId;

use super::Ctx;
use crate::output::{human_mib, relative_time};
use crate::{exit, parse};

/// Show one sandbox.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  warren info $ID
  warren info $ID --json | jq -r .expires_at")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let s = ctx.client()?.get(&args.id).await?;
    if ctx.out.json {
        ctx.out.json(&s)?;
        return Ok(exit::OK);
    }
    let now = OffsetDateTime::now_utc();
    let metadata = s
        .metadata
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let metadata = if metadata.is_empty() {
        "-".to_owned()
    } else {
        metadata
    };
    ctx.out.fields(&[
        ("id", s.id.clone()),
        ("template", s.template.clone()),
        (
            "state",
            match &s.pause_mode {
                Some(mode) => format!("{} ({mode})", s.state),
                None => s.state.clone(),
            },
        ),
        ("cpus", s.cpus.to_string()),
        ("memory", human_mib(s.memory_mb)),
        ("disk", human_mib(s.disk_mb)),
        (
            "created",
            format!("{} ({})", s.created_at, relative_time(&s.created_at, now)),
        ),
        (
            "expires",
            format!("{} ({})", s.expires_at, relative_time(&s.expires_at, now)),
        ),
        ("metadata", metadata),
    ])?;
    if let Some(u) = &s.usage {
        ctx.out.fields(&[
            (
                "used",
                format!(
                    "{:.2} CPU-s, {:.2} GiB-s of memory, running {}, paused {}",
                    u.cpu_seconds,
                    u.memory_gib_seconds,
                    super::usage::duration(u.running_seconds),
                    super::usage::duration(u.standby_seconds + u.paused_seconds)
                ),
            ),
            ("cost", super::usage::money(u.cost.total, &u.cost.currency)),
        ])?;
    }
    Ok(exit::OK)
}
