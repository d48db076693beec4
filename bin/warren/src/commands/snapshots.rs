//! `warren snapshots`: list (or delete) a sandbox's snapshots.

use time::OffsetDateTime;
use warren_core::SandboxId;

use super::Ctx;
use crate::output::{human_bytes, relative_time};
use crate::{exit, parse};

/// List a sandbox's named and fork snapshots with the sandboxes started
/// from each (lineage).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  warren snapshots $ID
  warren snapshots $ID --delete before-upgrade
  warren snapshots $ID --json | jq -r '.snapshots[].children[]'")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// Delete this named snapshot (name or id) instead of listing.
    #[arg(long, value_name = "SNAPSHOT")]
    delete: Option<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    if let Some(which) = &args.delete {
        client.delete_snapshot(&args.id, which).await?;
        ctx.out
            .note(&format!("snapshot {which} of {} deleted", args.id));
        return Ok(exit::OK);
    }
    let list = client.snapshots(&args.id).await?;
    if ctx.out.json {
        ctx.out.json(&list)?;
        return Ok(exit::OK);
    }
    if list.snapshots.is_empty() {
        ctx.out
            .note(&format!("sandbox {} has no snapshots", args.id));
        return Ok(exit::OK);
    }
    let now = OffsetDateTime::now_utc();
    let rows = list
        .snapshots
        .into_iter()
        .map(|s| {
            let size = if s.available {
                human_bytes(s.size_bytes)
            } else {
                "deleted".to_owned()
            };
            vec![
                s.id,
                s.name.unwrap_or_else(|| "-".into()),
                s.kind,
                size,
                relative_time(&s.created_at, now),
                if s.children.is_empty() {
                    "-".into()
                } else {
                    s.children.join(",")
                },
            ]
        })
        .collect();
    ctx.out.table(
        &["ID", "NAME", "KIND", "SIZE", "CREATED", "SANDBOXES"],
        rows,
    )?;
    ctx.out.note(&format!(
        "{} of snapshot images stored",
        human_bytes(list.total_bytes)
    ));
    Ok(exit::OK)
}
