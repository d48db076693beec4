//! `warren team`: create and list teams (operator admins).

use clap::Subcommand;
use warren_api_types::{CreateTeamRequest, TeamCreated, TeamList};

use super::Ctx;
use crate::exit;

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
    }
    Ok(exit::OK)
}
