//! `warren hook`: the team's inbound webhook hooks, which put GitHub's or
//! any signed sender's deliveries in sandboxes' inboxes.

use anyhow::Context as _;
use clap::Subcommand;
use warren_api_types::{CreateHookRequest, Hook, HookSubscription};
use warren_core::SandboxId;

use super::Ctx;
use crate::{exit, parse};

/// Webhook hooks: an address GitHub (or any Standard Webhooks sender) posts
/// to, checked by signature and routed to sandboxes' inboxes.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: HookCommand,
}

#[derive(Debug, Subcommand)]
enum HookCommand {
    /// Create a hook; its secret is printed once (needs hooks:write).
    #[command(subcommand)]
    Create(CreateCommand),
    /// List the team's hooks with their delivery counts (never secrets).
    #[command(
        after_help = "Examples:\n  warren hook ls\n  warren hook ls --json | jq -r '.hooks[].id'"
    )]
    Ls,
    /// Show one hook.
    #[command(after_help = "Examples:\n  warren hook info hk_0123...")]
    Info { id: String },
    /// Route a hook's deliveries to one more sandbox (or pull request,
    /// branch, event types).
    #[command(after_help = "\
Examples:
  warren hook subscribe hk_0123... --sandbox $ID --repo acme/app --on check_suite --pr 43
  warren hook subscribe hk_4567... --sandbox $ID --on invoice.paid")]
    Subscribe {
        /// The hook id.
        hook: String,
        #[command(flatten)]
        route: Route,
    },
    /// Stop routing a hook's deliveries by one subscription (its number in
    /// `warren hook info`).
    #[command(after_help = "Examples:\n  warren hook unsubscribe hk_0123... 1")]
    Unsubscribe { hook: String, subscription: u32 },
    /// Delete a hook: its deliveries are refused from then on.
    #[command(after_help = "Examples:\n  warren hook rm hk_0123...")]
    Rm { id: String },
}

#[derive(Debug, Subcommand)]
enum CreateCommand {
    /// A GitHub webhook (X-Hub-Signature-256), routed by repository, pull
    /// request or branch, and event type.
    #[command(after_help = "\
In the repository's Settings > Webhooks, set the payload URL to the printed
URL, the content type to application/json and the secret to the printed
secret, and pick the same events.

Examples:
  warren hook create github --repo acme/app --sandbox $ID --on check_suite,pull_request_review --pr 42
  warren hook create github --repo acme/app --sandbox $ID --on push --branch main")]
    Github {
        /// The repository, OWNER/NAME.
        #[arg(long, value_name = "OWNER/NAME")]
        repo: String,
        /// The sandbox whose inbox gets the deliveries.
        #[arg(long, value_name = "ID", value_parser = parse::sandbox_id)]
        sandbox: SandboxId,
        /// GitHub event types, comma-separated (check_suite, check_run,
        /// pull_request, pull_request_review, issue_comment, push,
        /// workflow_run, ...).
        #[arg(long, value_name = "EVENTS", value_delimiter = ',', required = true)]
        on: Vec<String>,
        /// Only deliveries about this pull request.
        #[arg(long, value_name = "N", conflicts_with = "branch")]
        pr: Option<u64>,
        /// Only deliveries about this branch.
        #[arg(long, value_name = "BRANCH")]
        branch: Option<String>,
        /// Use the secret in this file instead of a new one.
        #[arg(long, value_name = "FILE")]
        secret_file: Option<std::path::PathBuf>,
    },
    /// A Standard Webhooks hook (webhook-id, webhook-timestamp,
    /// webhook-signature), routed by the payload's type.
    #[command(after_help = "\
Examples:
  warren hook create standard --sandbox $ID
  warren hook create standard --sandbox $ID --on invoice.paid,invoice.void")]
    Standard {
        /// The sandbox whose inbox gets the deliveries.
        #[arg(long, value_name = "ID", value_parser = parse::sandbox_id)]
        sandbox: SandboxId,
        /// Payload types, comma-separated; every type when absent.
        #[arg(long, value_name = "TYPES", value_delimiter = ',')]
        on: Vec<String>,
        /// Use the whsec_ secret in this file instead of a new one.
        #[arg(long, value_name = "FILE")]
        secret_file: Option<std::path::PathBuf>,
    },
}

/// Where `warren hook subscribe` routes.
#[derive(Debug, clap::Args)]
struct Route {
    /// The sandbox whose inbox gets the deliveries.
    #[arg(long, value_name = "ID", value_parser = parse::sandbox_id)]
    sandbox: SandboxId,
    /// The repository, OWNER/NAME (GitHub hooks).
    #[arg(long, value_name = "OWNER/NAME")]
    repo: Option<String>,
    /// Event types, comma-separated (for a standard hook, none is every
    /// type).
    #[arg(long, value_name = "EVENTS", value_delimiter = ',')]
    on: Vec<String>,
    /// Only deliveries about this pull request (GitHub hooks).
    #[arg(long, value_name = "N", conflicts_with = "branch")]
    pr: Option<u64>,
    /// Only deliveries about this branch (GitHub hooks).
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
}

fn read_secret(path: Option<std::path::PathBuf>) -> anyhow::Result<Option<String>> {
    path.map(|p| {
        std::fs::read_to_string(&p)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
            .with_context(|| format!("cannot read {}", p.display()))
    })
    .transpose()
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        HookCommand::Create(create) => {
            let req = match create {
                CreateCommand::Github {
                    repo,
                    sandbox,
                    on,
                    pr,
                    branch,
                    secret_file,
                } => CreateHookRequest {
                    kind: "github".into(),
                    secret: read_secret(secret_file)?,
                    subscriptions: vec![HookSubscription {
                        id: None,
                        sandbox: sandbox.to_string(),
                        repository: Some(repo),
                        pull_request: pr,
                        branch,
                        events: on,
                    }],
                },
                CreateCommand::Standard {
                    sandbox,
                    on,
                    secret_file,
                } => CreateHookRequest {
                    kind: "standard".into(),
                    secret: read_secret(secret_file)?,
                    subscriptions: vec![HookSubscription {
                        sandbox: sandbox.to_string(),
                        events: on,
                        ..HookSubscription::default()
                    }],
                },
            };
            let created = client.create_hook(&req).await?;
            if ctx.out.json {
                ctx.out.json(&created)?;
            } else {
                let url = delivery_url(client.base_url(), &created.hook);
                ctx.out.fields(&[
                    ("id", created.hook.id.clone()),
                    ("url", url),
                    ("secret", created.secret.clone()),
                ])?;
                ctx.out
                    .note("the secret is shown only once: give it to the sender now");
            }
        }
        HookCommand::Ls => {
            let list = client.hooks().await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                let rows = list.hooks.iter().map(hook_row).collect();
                ctx.out.table(
                    &[
                        "ID",
                        "KIND",
                        "ROUTES",
                        "ACCEPTED",
                        "REJECTED",
                        "LAST DELIVERY",
                    ],
                    rows,
                )?;
            }
        }
        HookCommand::Info { id } => {
            let hook = client.hook(&id).await?;
            if ctx.out.json {
                ctx.out.json(&hook)?;
            } else {
                ctx.out.fields(&[
                    ("id", hook.id.clone()),
                    ("kind", hook.kind.clone()),
                    ("url", delivery_url(client.base_url(), &hook)),
                    ("routes", routes(&hook)),
                    ("accepted", hook.accepted.to_string()),
                    ("rejected", hook.rejected.to_string()),
                    (
                        "last delivery",
                        hook.last_delivery_at.clone().unwrap_or("-".into()),
                    ),
                    ("created", hook.created_at.clone()),
                ])?;
            }
        }
        HookCommand::Subscribe { hook, route } => {
            let sub = HookSubscription {
                id: None,
                sandbox: route.sandbox.to_string(),
                repository: route.repo,
                pull_request: route.pr,
                branch: route.branch,
                events: route.on,
            };
            let hook = client.subscribe_hook(&hook, &sub).await?;
            if ctx.out.json {
                ctx.out.json(&hook)?;
            } else {
                ctx.out.line(&routes(&hook))?;
            }
        }
        HookCommand::Unsubscribe { hook, subscription } => {
            client.unsubscribe_hook(&hook, subscription).await?;
            if ctx.out.json {
                ctx.out.json(&serde_json::json!({
                    "id": hook, "subscription": subscription, "removed": true
                }))?;
            } else {
                ctx.out.line(&format!("{hook} {subscription}"))?;
            }
        }
        HookCommand::Rm { id } => {
            client.delete_hook(&id).await?;
            if ctx.out.json {
                ctx.out
                    .json(&serde_json::json!({ "id": id, "deleted": true }))?;
            } else {
                ctx.out.line(&id)?;
            }
        }
    }
    Ok(exit::OK)
}

fn delivery_url(base: &str, hook: &Hook) -> String {
    format!("{}{}", base.trim_end_matches('/'), hook.delivery_path)
}

/// `sandbox <- repo#pr check_suite,push` for each subscription.
fn routes(hook: &Hook) -> String {
    hook.subscriptions
        .iter()
        .map(|s| {
            let mut from = s.repository.clone().unwrap_or_default();
            if let Some(pr) = s.pull_request {
                from.push_str(&format!("#{pr}"));
            }
            if let Some(b) = &s.branch {
                from.push_str(&format!("@{b}"));
            }
            let events = if s.events.is_empty() {
                "*".to_owned()
            } else {
                s.events.join(",")
            };
            let n = s.id.map(|n| format!("{n}:")).unwrap_or_default();
            [n.as_str(), s.sandbox.as_str(), "<-", &from, &events]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn hook_row(h: &Hook) -> Vec<String> {
    vec![
        h.id.clone(),
        h.kind.clone(),
        routes(h),
        h.accepted.to_string(),
        h.rejected.to_string(),
        h.last_delivery_at.clone().unwrap_or_else(|| "-".into()),
    ]
}
