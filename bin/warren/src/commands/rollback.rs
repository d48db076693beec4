//! `warren rollback`: put a sandbox back into one of its named snapshots.

use warren_core::SandboxId;

use super::Ctx;
use crate::{exit, parse};

/// Roll a sandbox back to a named snapshot: files, processes and memory are
/// as they were then; later changes are gone.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  warren snapshot $ID clean && warren exec $ID -- rm -rf /home/user/*
  warren rollback $ID clean")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// Name or id of one of its snapshots (see `warren snapshots ID`).
    #[arg(value_name = "SNAPSHOT")]
    snapshot: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let s = ctx.client()?.rollback(&args.id, &args.snapshot).await?;
    super::pause::print_state(ctx, &s)?;
    ctx.out
        .note(&format!("rolled back to snapshot {}", args.snapshot));
    Ok(exit::OK)
}
