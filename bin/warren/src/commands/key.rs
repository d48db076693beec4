//! `warren key`: mint, list and revoke the team's API keys (team admins),
//! and `warren whoami`.

use std::time::Duration;

use clap::Subcommand;
use warren_api_types::{CreateKeyRequest, Key, KeyList, NewKey, WhoAmI};

use super::Ctx;
use crate::exit;

/// API keys of your team. A key acts for one user, with a role (admin,
/// member, viewer), optional scopes that narrow it, and an optional expiry.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Mint a key; its secret is printed once.
    #[command(after_help = "\
A key never gets more rights than the key that mints it.
Scopes: sandboxes:read sandboxes:create sandboxes:exec sandboxes:manage
templates:build secrets:use secrets:manage audit:read keys:manage teams:manage
events:send events:read hooks:read hooks:write

Examples:
  warren key create ci --role member --expires-in 30d
  warren key create agents --e2b          for E2B's SDKs (E2B_API_KEY)
  warren key create auditor --role viewer --scope audit:read
  warren key create bob-laptop --user $BOB_ID --json | jq -r .secret")]
    Create {
        /// A label, e.g. ci or laptop.
        name: String,
        /// User id the key acts for [default: you].
        #[arg(long, value_name = "USER_ID")]
        user: Option<String>,
        /// admin, member or viewer.
        #[arg(long, default_value = "member")]
        role: String,
        /// Narrow the role to these scopes (repeatable).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Lifetime, e.g. 12h or 90d [default: no expiry].
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        /// Print the key in E2B's spelling (`e2b_` + hex), which E2B's SDKs
        /// insist on; it is the same kind of key.
        #[arg(long)]
        e2b: bool,
    },
    /// List your team's keys (never their secrets).
    Ls,
    /// Revoke a key at once; sandbox tokens it dispatched stop working too.
    Revoke {
        /// Key id (`warren key ls`; the part after `wrn_` in a native key).
        id: String,
    },
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        KeyCommand::Create {
            name,
            user,
            role,
            scopes,
            expires_in,
            e2b,
        } => {
            let body = CreateKeyRequest {
                name,
                user,
                role: Some(role),
                scopes: (!scopes.is_empty()).then_some(scopes),
                expires_in_s: expires_in.map(|d| d.as_secs().max(1)),
                e2b,
            };
            let key: NewKey = client
                .post_json(&["keys"], &body, "minting the key")
                .await?;
            if ctx.out.json {
                ctx.out.json(&key)?;
            } else {
                ctx.out.line(&key.secret)?;
                ctx.out.note(&format!(
                    "the key is shown only once: store it now (id {}, for `warren key revoke`)",
                    key.key.id
                ));
            }
        }
        KeyCommand::Ls => {
            let list: KeyList = client.get_json(&["keys"], "listing keys").await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                let rows = list.keys.into_iter().map(key_row).collect();
                ctx.out.table(
                    &["ID", "NAME", "USER", "ROLE", "SCOPES", "EXPIRES", "STATUS"],
                    rows,
                )?;
            }
        }
        KeyCommand::Revoke { id } => {
            let key: Key = client
                .delete_json(&["keys", &id], "revoking the key")
                .await?;
            if ctx.out.json {
                ctx.out.json(&key)?;
            } else {
                ctx.out.line(&key.id)?;
            }
        }
    }
    Ok(exit::OK)
}

fn key_row(k: Key) -> Vec<String> {
    let status = if k.revoked_at.is_some() {
        "revoked"
    } else {
        "active"
    };
    vec![
        k.id,
        k.name,
        k.user,
        k.role,
        k.scopes
            .map_or_else(|| "(role)".to_owned(), |s| s.join(",")),
        k.expires_at.unwrap_or_else(|| "never".into()),
        status.to_owned(),
    ]
}

/// Show who the configured key acts for and what it may do.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  warren whoami\n  warren whoami --json | jq -r .team")]
pub struct WhoAmIArgs {}

pub async fn whoami(ctx: &Ctx, _args: WhoAmIArgs) -> anyhow::Result<i32> {
    let me: WhoAmI = ctx
        .client()?
        .get_json(&["whoami"], "asking who this key is")
        .await?;
    if ctx.out.json {
        ctx.out.json(&me)?;
    } else {
        ctx.out.fields(&[
            ("team", format!("{} ({})", me.team_name, me.team)),
            ("user", format!("{} ({})", me.user_name, me.user)),
            ("key", me.key),
            ("role", me.role),
            ("scopes", me.scopes.join(" ")),
        ])?;
    }
    Ok(exit::OK)
}
