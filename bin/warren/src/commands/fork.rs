//! `warren fork`: branch a running sandbox into new ones.

use warren_core::SandboxId;

use super::Ctx;
use crate::{exit, parse};

/// Fork a sandbox into N new sandboxes with its exact state; it keeps
/// running. Prints the new ids, one a line.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each branch has its own id, address and limits and is isolated from the
others and from the parent. `warren snapshots ID` shows the lineage.

Examples:
  warren fork $ID -n 3
  for B in $(warren fork $ID -n 3); do warren exec $B -- ./try-plan.sh & done")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// How many branches (1-16).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 1)]
    count: u32,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let fork = ctx.client()?.fork(&args.id, args.count).await?;
    if ctx.out.json {
        ctx.out.json(&fork)?;
    } else {
        for s in &fork.sandboxes {
            ctx.out.line(&s.id)?;
        }
        ctx.out.note(&format!(
            "forked {} into {} sandboxes from snapshot {}",
            args.id,
            fork.sandboxes.len(),
            fork.snapshot
        ));
    }
    Ok(exit::OK)
}
