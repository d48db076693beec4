//! `warren pause`: checkpoint a sandbox to disk and free its CPU and memory.

use warren_api_types::Sandbox;
use warren_core::SandboxId;

use super::Ctx;
use crate::{exit, parse};

/// Pause a sandbox: its whole state (memory, processes, files) goes to disk
/// and it uses no CPU or memory until resumed.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exec and file calls on a paused sandbox resume it first (unless it was created
with auto-resume off); `warren resume` does it explicitly.

With --fs-only every process of the sandbox is ended and only its files are
kept: the image is smaller, and the resume boots the sandbox again (its
template's start command runs again, as at create).

Examples:
  warren pause $ID
  warren pause --fs-only $ID
  warren pause $ID --json | jq -r .pause_mode")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// Keep only the files: end every process; the resume boots it again.
    #[arg(long)]
    fs_only: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let s = ctx.client()?.pause(&args.id, args.fs_only).await?;
    print_state(ctx, &s)?;
    Ok(exit::OK)
}

/// `ID STATE`, or the whole sandbox with `--json` (pause, resume, rollback).
pub fn print_state(ctx: &Ctx, s: &Sandbox) -> anyhow::Result<()> {
    if ctx.out.json {
        ctx.out.json(s)?;
    } else {
        ctx.out.line(&format!("{} {}", s.id, s.state))?;
    }
    Ok(())
}
