//! `warren snapshot`: take a named snapshot of a running sandbox.

use warren_core::SandboxId;

use super::Ctx;
use crate::output::human_bytes;
use crate::{exit, parse};

/// Take a named snapshot; the sandbox keeps running.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints the snapshot's id. Roll back to it with `warren rollback ID NAME`, or
start a new sandbox from it with `warren create --from-snapshot SNAPSHOT_ID`.
Network connections into the sandbox are reset.

Examples:
  warren snapshot $ID before-upgrade
  SNAP=$(warren snapshot $ID clean -q)")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// 1-63 characters of a-z, 0-9, '-', '_' and '.'; unique per sandbox.
    #[arg(value_name = "NAME")]
    name: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let s = ctx.client()?.snapshot(&args.id, &args.name).await?;
    if ctx.out.json {
        ctx.out.json(&s)?;
    } else {
        ctx.out.line(&s.id)?;
        ctx.out.note(&format!(
            "snapshot '{}' of {} taken ({})",
            args.name,
            args.id,
            human_bytes(s.size_bytes)
        ));
    }
    Ok(exit::OK)
}
