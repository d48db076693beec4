//! `warren kill`: kill sandboxes.

use futures::future::join_all;
use serde_json::json;
use warren_core::SandboxId;

use super::Ctx;
use crate::{exit, parse};

/// Kill one or more sandboxes (their state and files are gone).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints each killed id; if any kill fails, says why and exits 1 after trying all.

Examples:
  warren kill $ID
  warren ls --json | jq -r '.sandboxes[].id' | xargs warren kill")]
pub struct Args {
    /// Sandbox ids.
    #[arg(value_name = "ID", required = true, value_parser = parse::sandbox_id)]
    ids: Vec<SandboxId>,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    let results = join_all(args.ids.iter().map(|id| client.kill(id))).await;
    let mut killed = Vec::new();
    let mut failed = Vec::new();
    for (id, result) in args.ids.iter().zip(results) {
        match result {
            Ok(()) => killed.push(id.as_str()),
            Err(e) => failed.push((id.as_str(), e)),
        }
    }
    if ctx.out.json {
        let failed: Vec<_> = failed
            .iter()
            .map(|(id, e)| json!({ "id": id, "code": e.code(), "message": e.to_string() }))
            .collect();
        ctx.out
            .json(&json!({ "killed": killed, "failed": failed }))?;
    } else {
        for id in &killed {
            ctx.out.line(id)?;
        }
    }
    for (id, e) in &failed {
        ctx.out.error(&format!("{id}: {e}"));
    }
    Ok(if failed.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    })
}
