//! `warren timeout`: move a sandbox's kill time.

use time::OffsetDateTime;
use warren_core::SandboxId;

use super::Ctx;
use crate::output::relative_time;
use crate::{exit, parse};

/// Set how long from now a sandbox may live before it is killed.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  warren timeout $ID 30m       kill it 30 minutes from now
  warren timeout $ID 3600      the same in seconds")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// Time from now: seconds (300) or 5m, 1h30m.
    #[arg(value_name = "DURATION", value_parser = parse::duration_secs)]
    duration: u64,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let s = ctx.client()?.set_timeout(&args.id, args.duration).await?;
    if ctx.out.json {
        ctx.out.json(&s)?;
    } else {
        let when = relative_time(&s.expires_at, OffsetDateTime::now_utc());
        ctx.out
            .line(&format!("{} expires {when} ({})", s.id, s.expires_at))?;
    }
    Ok(exit::OK)
}
