//! `warren template`: list and build templates.

use std::time::Instant;

use anyhow::bail;
use clap::Subcommand;
use warren_api_types::BuildEvent;

use super::Ctx;
use crate::exit;
use crate::output::{human_bytes, short_duration};

/// List and build templates (root filesystems sandboxes start from).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TemplateCommand,
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// List templates.
    #[command(after_help = "Examples:\n  warren template ls\n  warren template ls --json")]
    Ls,
    /// Build a template, streaming the build log (a template that is already
    /// ready is kept as it is).
    #[command(after_help = "\
Build output streams to stderr; a summary line goes to stdout at the end.
Exits 1 if the build fails.

Examples:
  warren template build base
  warren template build base --json | jq -r 'select(.type == \"log\") | .line'")]
    Build {
        /// Template name.
        #[arg(value_name = "NAME", value_parser = parse_name)]
        name: String,
    },
}

fn parse_name(raw: &str) -> Result<String, String> {
    warren_core::spec::validate_template_name(raw)
        .map(|()| raw.to_owned())
        .map_err(|e| e.message)
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    match args.command {
        TemplateCommand::Ls => ls(ctx).await,
        TemplateCommand::Build { name } => build(ctx, &name).await,
    }
}

async fn ls(ctx: &Ctx) -> anyhow::Result<i32> {
    let list = ctx.client()?.templates().await?;
    if ctx.out.json {
        ctx.out.json(&list)?;
        return Ok(exit::OK);
    }
    if list.templates.is_empty() {
        ctx.out
            .note("no templates; build one with `warren template build base`");
        return Ok(exit::OK);
    }
    let rows = list
        .templates
        .into_iter()
        .map(|t| {
            vec![
                t.name,
                t.status,
                human_bytes(t.size_bytes),
                t.built_at.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    ctx.out.table(&["NAME", "STATUS", "SIZE", "BUILT"], rows)?;
    Ok(exit::OK)
}

async fn build(ctx: &Ctx, name: &str) -> anyhow::Result<i32> {
    let started = Instant::now();
    let mut events = ctx.client()?.build_template(name).await?;
    while let Some(event) = events.next().await? {
        if ctx.out.json {
            ctx.out.json(&event)?;
        }
        match event {
            BuildEvent::Log { line } => {
                if !ctx.out.json {
                    ctx.out.note(&line);
                }
            }
            BuildEvent::Done { template } => {
                if !ctx.out.json {
                    ctx.out.line(&format!(
                        "built template {} ({}) in {}",
                        template.name,
                        human_bytes(template.size_bytes),
                        short_duration(started.elapsed().as_secs())
                    ))?;
                }
                return Ok(exit::OK);
            }
            BuildEvent::Error { message } => {
                ctx.out
                    .error(&format!("building template {name} failed: {message}"));
                return Ok(exit::FAILURE);
            }
        }
    }
    bail!(
        "the daemon ended the build stream without saying whether template {name} was built; check `warren template ls`"
    )
}
