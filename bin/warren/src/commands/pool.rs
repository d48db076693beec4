//! `warren pool`: warm pools of ready sandboxes per template (operator
//! admins; docs/pools.md).

use clap::Subcommand;
use warren_api_types::{Pool, SetPoolRequest};

use super::Ctx;
use crate::{exit, parse};

/// Warm pools: ready sandboxes that creates claim instead of booting one.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: PoolCommand,
}

#[derive(Debug, Subcommand)]
enum PoolCommand {
    /// Create or change the pool of a template.
    #[command(after_help = "\
Needs an admin key of the operator team. A create is served from the pool
when it asks for the pool's template and exactly its size (cpus, memory,
disk); sizes left out are the daemon's defaults. The pool keeps between
--min and --max sandboxes ready, following demand (docs/pools.md).

Examples:
  warren pool set base --min 2 --max 20
  warren pool set code-interpreter --min 1 --max 8 --cpus 2 --memory 1GiB
  warren pool set base --min 4 --max 4 --frozen")]
    Set {
        /// The template.
        template: String,
        /// Ready sandboxes kept whatever the demand.
        #[arg(long, value_name = "N")]
        min: u32,
        /// Ready sandboxes never exceeded (1-256).
        #[arg(long, value_name = "N")]
        max: u32,
        /// CPUs of the pool's sandboxes.
        #[arg(long, value_name = "N")]
        cpus: Option<u32>,
        /// Memory of the pool's sandboxes (a bare number is MiB).
        #[arg(long = "memory", alias = "memory-mb", value_name = "SIZE", value_parser = parse::size_mib)]
        memory_mb: Option<u64>,
        /// Disk limit of the pool's sandboxes (a bare number is MiB).
        #[arg(long = "disk", alias = "disk-mb", value_name = "SIZE", value_parser = parse::size_mib)]
        disk_mb: Option<u64>,
        /// Keep ready sandboxes frozen (no CPU, memory kept) until claimed;
        /// a claim thaws one first.
        #[arg(long)]
        frozen: bool,
    },
    /// List the pools and their state.
    Ls,
    /// Delete the pool of a template; its ready sandboxes are torn down.
    Rm {
        /// The template.
        template: String,
    },
}

fn small(what: &str, n: Option<u64>) -> anyhow::Result<Option<u32>> {
    n.map(|n| u32::try_from(n).map_err(|_| anyhow::anyhow!("{what} {n} MiB is too large")))
        .transpose()
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        PoolCommand::Set {
            template,
            min,
            max,
            cpus,
            memory_mb,
            disk_mb,
            frozen,
        } => {
            let body = SetPoolRequest {
                min,
                max,
                cpus,
                memory_mb: small("--memory", memory_mb)?,
                disk_mb: small("--disk", disk_mb)?,
                frozen,
            };
            let pool = client.set_pool(&template, &body).await?;
            if ctx.out.json {
                ctx.out.json(&pool)?;
            } else {
                print_pools(ctx, vec![pool])?;
            }
        }
        PoolCommand::Ls => {
            let list = client.pools().await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                print_pools(ctx, list.pools)?;
            }
        }
        PoolCommand::Rm { template } => {
            client.delete_pool(&template).await?;
            ctx.out.note(&format!("pool of {template} deleted"));
        }
    }
    Ok(exit::OK)
}

fn print_pools(ctx: &Ctx, pools: Vec<Pool>) -> anyhow::Result<()> {
    let rows = pools
        .into_iter()
        .map(|p| {
            vec![
                p.template,
                format!("{}-{}", p.min, p.max),
                format!(
                    "{} cpu / {} MiB / {} MiB disk",
                    p.cpus, p.memory_mb, p.disk_mb
                ),
                if p.frozen {
                    format!("{} frozen", p.ready)
                } else {
                    p.ready.to_string()
                },
                p.booting.to_string(),
                p.target.to_string(),
                format!("{}/{}", p.hits, p.hits + p.misses),
                format!("{:.2}/s", p.rate_per_s),
            ]
        })
        .collect();
    ctx.out.table(
        &[
            "TEMPLATE", "MIN-MAX", "SIZE", "READY", "BOOTING", "TARGET", "HITS", "RATE",
        ],
        rows,
    )?;
    Ok(())
}
