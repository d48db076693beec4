//! `warren team`: create and list teams, read and set their quotas
//! (operator admins).

use clap::Subcommand;
use warren_api_types::{CreateTeamRequest, SetQuotaRequest, TeamCreated, TeamList, TeamQuota};

use super::Ctx;
use crate::{exit, parse};

/// Teams: each has its own sandboxes, users, keys and audit trail.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TeamCommand,
}

#[derive(Debug, Subcommand)]
enum TeamCommand {
    /// Create a team and its first admin; prints the admin's key once.
    #[command(after_help = "\
Needs an admin key of the operator team (the key `warren serve` printed on
first start). Hand the printed key to the team's admin.

Examples:
  warren team create acme --admin alice@acme.example
  warren team create acme --admin alice --json | jq -r .key.secret")]
    Create {
        /// Team name: a-z, 0-9 and '-'.
        name: String,
        /// Name of the team's first user, who gets an admin key.
        #[arg(long, value_name = "USER")]
        admin: String,
    },
    /// List teams.
    Ls,
    /// Show a team's quota and usage; with flags, change the quota first.
    #[command(after_help = "\
Needs an admin key of the operator team. Flags left out keep their value;
a team without a quota of its own has the daemon's defaults (docs/tenancy.md).
Sizes take binary units: 64GiB, 512M, 1T (a bare number is MiB for memory
and disk, bytes for snapshots).

Examples:
  warren team quota acme
  warren team quota acme --max-sandboxes 10 --max-vcpus 16 --max-memory 32GiB
  warren team quota acme --max-snapshot-bytes 50GiB --json")]
    Quota {
        /// The team's name or id.
        team: String,
        /// Live sandboxes (paused ones do not count).
        #[arg(long, value_name = "N")]
        max_sandboxes: Option<u32>,
        /// Sum of live sandboxes' CPUs.
        #[arg(long, value_name = "N")]
        max_vcpus: Option<u32>,
        /// Sum of live sandboxes' memory.
        #[arg(long, value_name = "SIZE", value_parser = parse::size_mib)]
        max_memory: Option<u64>,
        /// Sum of live sandboxes' disk limits.
        #[arg(long, value_name = "SIZE", value_parser = parse::size_mib)]
        max_disk: Option<u64>,
        /// Stored snapshot images (pause, named, fork).
        #[arg(long, value_name = "SIZE", value_parser = parse::size_bytes)]
        max_snapshot_bytes: Option<u64>,
        /// Branches per fork call (1-16).
        #[arg(long, value_name = "N")]
        max_branches: Option<u32>,
    },
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        TeamCommand::Create { name, admin } => {
            let created: TeamCreated = client
                .post_json(
                    &["teams"],
                    &CreateTeamRequest { name, admin },
                    "creating the team",
                )
                .await?;
            if ctx.out.json {
                ctx.out.json(&created)?;
            } else {
                ctx.out.fields(&[
                    (
                        "team",
                        format!("{} ({})", created.team.name, created.team.id),
                    ),
                    (
                        "admin",
                        format!("{} ({})", created.admin.name, created.admin.id),
                    ),
                    ("key", created.key.secret),
                ])?;
                ctx.out.note("the key is shown only once: store it now");
            }
        }
        TeamCommand::Ls => {
            let list: TeamList = client.get_json(&["teams"], "listing teams").await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                let rows = list
                    .teams
                    .into_iter()
                    .map(|t| {
                        let kind = if t.operator { "operator" } else { "" };
                        vec![t.id, t.name, kind.to_owned(), t.created_at]
                    })
                    .collect();
                ctx.out.table(&["ID", "NAME", "KIND", "CREATED"], rows)?;
            }
        }
        TeamCommand::Quota {
            team,
            max_sandboxes,
            max_vcpus,
            max_memory,
            max_disk,
            max_snapshot_bytes,
            max_branches,
        } => {
            let change = SetQuotaRequest {
                max_sandboxes,
                max_vcpus,
                max_memory_mb: max_memory,
                max_disk_mb: max_disk,
                max_snapshot_bytes,
                max_branches,
            };
            let path = ["teams", team.as_str(), "quota"];
            let q: TeamQuota = if change == SetQuotaRequest::default() {
                client.get_json(&path, "reading the quota").await?
            } else {
                client.put_json(&path, &change, "setting the quota").await?
            };
            if ctx.out.json {
                ctx.out.json(&q)?;
            } else {
                print_quota(ctx, &q)?;
            }
        }
    }
    Ok(exit::OK)
}

fn print_quota(ctx: &Ctx, q: &TeamQuota) -> anyhow::Result<()> {
    let (l, u) = (&q.quota, &q.usage);
    let row = |limit: &str, max: String, used: String| vec![limit.to_owned(), max, used];
    let rows = vec![
        row(
            "sandboxes",
            l.max_sandboxes.to_string(),
            u.sandboxes.to_string(),
        ),
        row("vcpus", l.max_vcpus.to_string(), u.vcpus.to_string()),
        row("memory", mib(l.max_memory_mb), mib(u.memory_mb)),
        row("disk", mib(l.max_disk_mb), mib(u.disk_mb)),
        row(
            "snapshots",
            bytes(l.max_snapshot_bytes),
            bytes(u.snapshot_bytes),
        ),
        row(
            "branches per fork",
            l.max_branches.to_string(),
            "-".to_owned(),
        ),
    ];
    ctx.out.table(&["LIMIT", "MAX", "USED"], rows)?;
    let whose = if q.default {
        "the defaults (no quota of its own)"
    } else {
        "its own quota"
    };
    ctx.out
        .note(&format!("team {} ({}) has {whose}", q.team_name, q.team));
    Ok(())
}

/// MiB shown in the largest binary unit that divides them.
fn mib(n: u64) -> String {
    bytes(n.saturating_mul(1 << 20))
}

/// Bytes shown in the largest binary unit that divides them.
fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    UNITS
        .iter()
        .find(|(_, size)| n > 0 && n.is_multiple_of(*size))
        .map_or_else(
            || format!("{n}B"),
            |(unit, size)| format!("{}{unit}", n / size),
        )
}
