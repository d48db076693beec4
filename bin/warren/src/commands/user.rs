//! `warren user`: the team's users (team admins).

use clap::Subcommand;
use warren_api_types::{CreateUserRequest, User, UserList};

use super::Ctx;
use crate::exit;

/// Users of your team: the people keys and sandboxes act for.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user to your team, then mint keys for them with `warren key create`.
    #[command(after_help = "Examples:\n  warren user create bob@acme.example\n  \
        warren key create laptop --user $(warren user create bob --json | jq -r .id)")]
    Create {
        /// User name, unique in the team.
        name: String,
    },
    /// List your team's users.
    Ls,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        UserCommand::Create { name } => {
            let user: User = client
                .post_json(&["users"], &CreateUserRequest { name }, "creating the user")
                .await?;
            if ctx.out.json {
                ctx.out.json(&user)?;
            } else {
                ctx.out.line(&user.id)?;
            }
        }
        UserCommand::Ls => {
            let list: UserList = client.get_json(&["users"], "listing users").await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                let rows = list
                    .users
                    .into_iter()
                    .map(|u| vec![u.id, u.name, u.created_at])
                    .collect();
                ctx.out.table(&["ID", "NAME", "CREATED"], rows)?;
            }
        }
    }
    Ok(exit::OK)
}
