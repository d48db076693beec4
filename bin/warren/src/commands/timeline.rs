//! `warren timeline`: a sandbox's life from the audit log.

use warren_core::SandboxId;

use super::Ctx;
use crate::{exit, parse};

/// Show what happened in a sandbox: who created it, every command with its
/// exit code, files written, terminals, kills and expiry.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Works for killed sandboxes too: the audit log keeps their history.

Examples:
  warren timeline $ID
  warren timeline $ID --json | jq '.events[] | select(.kind == \"command\")'")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let timeline = ctx.client()?.timeline(&args.id).await?;
    if ctx.out.json {
        ctx.out.json(&timeline)?;
        return Ok(exit::OK);
    }
    let rows = timeline
        .events
        .into_iter()
        .map(|e| vec![e.time, e.kind, e.outcome, e.summary])
        .collect();
    ctx.out.table(&["TIME", "EVENT", "OUTCOME", "WHAT"], rows)?;
    Ok(exit::OK)
}
