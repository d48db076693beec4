//! `warren resume`: bring a paused sandbox back exactly as it was.

use warren_core::SandboxId;

use super::Ctx;
use crate::{exit, parse};

/// Resume a paused sandbox: processes continue where they were.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Network connections into the sandbox were reset by the pause: clients
reconnect. Resuming a running sandbox does nothing.

Examples:
  warren resume $ID")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let s = ctx.client()?.resume(&args.id).await?;
    super::pause::print_state(ctx, &s)?;
    Ok(exit::OK)
}
