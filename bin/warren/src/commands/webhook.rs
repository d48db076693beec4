//! `warren webhook`: the team's lifecycle webhooks and their delivery logs.

use clap::Subcommand;
use warren_api_types::{CreateWebhookRequest, Delivery, Webhook};

use super::Ctx;
use crate::exit;

/// Lifecycle webhooks: Warren POSTs signed JSON (Standard Webhooks) to a
/// URL when the team's sandboxes are created, paused, resumed, killed,
/// fail, fork or are snapshotted; failed deliveries are retried for a day.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: WebhookCommand,
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Register a webhook; its signing secret is printed once (needs
    /// webhooks:write).
    #[command(after_help = "\
Events: sandbox.created sandbox.paused sandbox.resumed sandbox.killed
sandbox.failed sandbox.forked snapshot.created event.delivered, or * for all.

Examples:
  warren webhook create https://ci.example.com/warren --events sandbox.paused,sandbox.killed
  warren webhook create https://example.com/hook --events '*' --json | jq -r .secret")]
    Create {
        /// http:// or https:// URL the events are POSTed to.
        #[arg(value_name = "URL")]
        target: String,
        /// Comma-separated event names, or '*'.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// whsec_… secret to sign with [default: a new random one].
        #[arg(long, value_name = "SECRET")]
        secret: Option<String>,
        /// A label.
        #[arg(long)]
        name: Option<String>,
    },
    /// List the team's webhooks (never their secrets).
    Ls,
    /// Delete a webhook; its pending deliveries are not sent.
    Rm { id: String },
    /// A webhook's delivery log, newest first.
    #[command(
        after_help = "Examples:\n  warren webhook deliveries 5b0f…\n  warren webhook deliveries 5b0f… --json | jq '.deliveries[] | select(.state == \"failed\")'"
    )]
    Deliveries { id: String },
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        WebhookCommand::Create {
            target,
            events,
            secret,
            name,
        } => {
            let created = client
                .create_webhook(&CreateWebhookRequest {
                    url: target,
                    events,
                    secret,
                    name,
                })
                .await?;
            if ctx.out.json {
                ctx.out.json(&created)?;
            } else {
                ctx.out.fields(&[
                    ("id", created.webhook.id.clone()),
                    ("url", created.webhook.url.clone()),
                    ("events", created.webhook.events.join(",")),
                    ("secret", created.secret.clone()),
                ])?;
                ctx.out
                    .note("keep the secret: it is not shown again; receivers verify with it");
            }
        }
        WebhookCommand::Ls => {
            let list = client.webhooks().await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                let rows = list.webhooks.into_iter().map(webhook_row).collect();
                ctx.out
                    .table(&["ID", "URL", "EVENTS", "ENABLED", "CREATED"], rows)?;
            }
        }
        WebhookCommand::Rm { id } => {
            client.delete_webhook(&id).await?;
            if ctx.out.json {
                ctx.out
                    .json(&serde_json::json!({ "id": id, "deleted": true }))?;
            } else {
                ctx.out.line(&id)?;
            }
        }
        WebhookCommand::Deliveries { id } => {
            let list = client.webhook_deliveries(&id).await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                let rows = list.deliveries.into_iter().map(delivery_row).collect();
                ctx.out.table(
                    &[
                        "EVENT", "TYPE", "SANDBOX", "STATE", "ATTEMPTS", "LAST", "NEXT",
                    ],
                    rows,
                )?;
            }
        }
    }
    Ok(exit::OK)
}

fn webhook_row(w: Webhook) -> Vec<String> {
    vec![
        w.id,
        w.url,
        w.events.join(","),
        w.enabled.to_string(),
        w.created_at,
    ]
}

fn delivery_row(d: Delivery) -> Vec<String> {
    let last = match (d.last_status, d.last_error) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => e,
        (None, None) => "-".to_owned(),
    };
    vec![
        d.event_id,
        d.kind,
        d.sandbox_id,
        d.state,
        d.attempts.to_string(),
        last,
        d.next_attempt_at.unwrap_or_else(|| "-".to_owned()),
    ]
}
