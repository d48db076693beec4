//! One delivery to a hook, from the internet: checked, deduplicated,
//! routed, put in inboxes.
//!
//! Order of checks, each failure final:
//! 1. the hook exists (else 404; nothing to count against);
//! 2. the body is at most [`MAX_DELIVERY_BYTES`] (else 413, counted);
//! 3. the signature verifies under the hook's secret — GitHub's
//!    `X-Hub-Signature-256`, or Standard Webhooks' headers within the
//!    replay window (else 401, counted; the same answer whatever the
//!    reason, so the endpoint tells a prober nothing);
//! 4. the delivery id (`X-GitHub-Delivery`, `webhook-id`) was not accepted
//!    within [`SEEN_WINDOW`] (else 200 with `duplicate`, nothing sent);
//! 5. the payload is JSON of at most the inbox's 256 KiB (else 400 / 413,
//!    counted).
//!
//! Then every matching subscription's sandbox gets the event through
//! [`Sandboxes::send_event`] with the dedupe key `github:<id>` or
//! `webhook:<id>`, and only then is the id remembered: a crash in between
//! makes the sender's retry deliver again, and the inboxes' dedupe keys
//! keep it from counting twice. A killed or failed sandbox, or a full
//! inbox, is skipped: the sender is not to blame.

use std::collections::BTreeSet;

use serde_json::Value;
use warren_core::{ErrorKind, WarrenError};
use warren_store::{HookKind, HookRecord};

use super::{Hooks, github, sealed_name, standard};
use crate::audit::{Action, AuditActor, Event};
use crate::service::events::{MAX_EVENT_DATA, SentEvent};
use crate::signature;

/// Largest delivery body read.
pub const MAX_DELIVERY_BYTES: usize = 1024 * 1024;
/// How long an accepted delivery id is remembered.
pub const SEEN_WINDOW: time::Duration = time::Duration::days(7);

/// The answer to every refused signature.
const REFUSED: &str = "the delivery's signature is not accepted";

/// The headers a delivery may carry.
#[derive(Debug, Default, Clone)]
pub struct DeliveryHeaders {
    pub hub_signature_256: Option<String>,
    pub github_event: Option<String>,
    pub github_delivery: Option<String>,
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    pub webhook_signature: Option<String>,
}

/// What a good delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Sandboxes whose inbox holds it.
    pub sandboxes: u32,
    /// Its id was accepted before; nothing was sent again.
    pub duplicate: bool,
}

/// What a verified delivery is, whatever its kind.
struct Verified {
    delivery: String,
    /// GitHub's event name (`ping` included); for standard hooks, `None`
    /// until the payload is read.
    github_event: Option<String>,
}

fn delivery_id(header: Option<&str>, name: &str) -> Result<String, WarrenError> {
    match header {
        Some(id) if (1..=200).contains(&id.len()) && !id.chars().any(char::is_control) => {
            Ok(id.to_owned())
        }
        _ => Err(WarrenError::invalid(format!(
            "{name} must name the delivery: 1-200 printable characters"
        ))),
    }
}

impl Hooks {
    /// The hook a delivery is addressed to, whatever its team.
    pub async fn find(&self, id: &str) -> Result<HookRecord, WarrenError> {
        self.store
            .get_hook(id)
            .await?
            .ok_or_else(|| super::not_found(id))
    }

    /// Counts a refused delivery to `hook`.
    pub async fn reject(&self, hook: &HookRecord) {
        if let Err(e) = self
            .store
            .count_hook_delivery(&hook.id, false, self.clock.now())
            .await
        {
            tracing::warn!(hook = %hook.id, error = %e, "could not count a refused delivery");
        }
    }

    /// A 413 for a body over [`MAX_DELIVERY_BYTES`], counted.
    pub async fn too_large(&self, hook: &HookRecord) -> WarrenError {
        self.reject(hook).await;
        WarrenError::new(
            ErrorKind::PayloadTooLarge,
            format!("a delivery is at most {MAX_DELIVERY_BYTES} bytes"),
        )
    }

    fn verify(
        &self,
        hook: &HookRecord,
        headers: &DeliveryHeaders,
        body: &[u8],
    ) -> Result<Verified, WarrenError> {
        let secret = self.secrets.cipher().open(
            &hook.team,
            &sealed_name(&hook.id),
            &hook.ciphertext,
            &hook.nonce,
        )?;
        let refused = || WarrenError::new(ErrorKind::Unauthenticated, REFUSED);
        match hook.kind {
            HookKind::Github => {
                signature::verify_github(
                    secret.expose().as_bytes(),
                    headers.hub_signature_256.as_deref(),
                    body,
                )
                .map_err(|_| refused())?;
                let event = headers
                    .github_event
                    .clone()
                    .filter(|e| super::event_name_ok(e) && e.len() <= 64)
                    .ok_or_else(|| {
                        WarrenError::invalid("X-GitHub-Event must name the event, e.g. check_suite")
                    })?;
                Ok(Verified {
                    delivery: delivery_id(headers.github_delivery.as_deref(), "X-GitHub-Delivery")?,
                    github_event: Some(event),
                })
            }
            HookKind::Standard => {
                let key = signature::secret_key(secret.expose())
                    .map_err(|e| WarrenError::internal(format!("hook {}: {e}", hook.id)))?;
                let received = signature::Received {
                    id: headers.webhook_id.as_deref(),
                    timestamp: headers.webhook_timestamp.as_deref(),
                    signature: headers.webhook_signature.as_deref(),
                };
                signature::verify(&key, received, body, self.clock.now().unix_timestamp())
                    .map_err(|_| refused())?;
                Ok(Verified {
                    delivery: delivery_id(headers.webhook_id.as_deref(), "webhook-id")?,
                    github_event: None,
                })
            }
        }
    }

    /// Takes one delivery to `hook` (see the module's order of checks).
    pub async fn deliver(
        &self,
        hook: &HookRecord,
        headers: &DeliveryHeaders,
        body: &[u8],
    ) -> Result<Delivered, WarrenError> {
        if body.len() > MAX_DELIVERY_BYTES {
            return Err(self.too_large(hook).await);
        }
        let verified = match self.verify(hook, headers, body) {
            Ok(v) => v,
            Err(e) => {
                if e.kind == ErrorKind::Unauthenticated {
                    self.reject(hook).await;
                }
                return Err(e);
            }
        };
        if self
            .store
            .hook_delivery_seen(&hook.id, &verified.delivery)
            .await?
        {
            return Ok(Delivered {
                sandboxes: 0,
                duplicate: true,
            });
        }
        let now = self.clock.now();
        if verified.github_event.as_deref() == Some("ping") {
            self.store.count_hook_delivery(&hook.id, true, now).await?;
            return Ok(Delivered {
                sandboxes: 0,
                duplicate: false,
            });
        }
        let payload: Value = serde_json::from_slice(body).map_err(|_| {
            WarrenError::invalid("the delivery's body must be JSON (content type application/json)")
        })?;
        let size = payload.to_string().len();
        if size > MAX_EVENT_DATA {
            self.reject(hook).await;
            return Err(WarrenError::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "the payload is {size} bytes serialized; an inbox takes at most {MAX_EVENT_DATA}"
                ),
            ));
        }
        let (kind, source, dedupe_key, targets) = self.route(hook, &verified, &payload);
        let actor = AuditActor {
            team: hook.team.to_string(),
            chain: vec![format!("hook:{}", hook.id)],
        };
        let mut reached = 0u32;
        for sandbox in &targets {
            let sent = SentEvent {
                kind: kind.clone(),
                source: source.clone(),
                data: payload.clone(),
                dedupe_key: Some(dedupe_key.clone()),
            };
            match self.sandboxes.send_event(sandbox, sent, &actor).await {
                Ok(_) => reached += 1,
                Err(e) if e.kind == ErrorKind::InvalidArgument => return Err(e),
                Err(e)
                    if matches!(
                        e.kind,
                        ErrorKind::NotFound
                            | ErrorKind::FailedPrecondition
                            | ErrorKind::QuotaExceeded
                            | ErrorKind::BudgetExceeded
                    ) =>
                {
                    tracing::info!(hook = %hook.id, %sandbox, reason = %e, "delivery skipped a sandbox");
                }
                Err(e) => return Err(e),
            }
        }
        self.store
            .note_hook_delivery(&hook.id, &verified.delivery, now)
            .await?;
        self.store.count_hook_delivery(&hook.id, true, now).await?;
        let event = Event::new(Action::HookDeliver, hook.id.clone())
            .with("delivery", verified.delivery.as_str())
            .with("type", kind.as_str())
            .with("source", source.as_str())
            .with("sandboxes", reached);
        self.audit.record_done(&actor, event).await;
        Ok(Delivered {
            sandboxes: reached,
            duplicate: false,
        })
    }

    /// The inbox type, source and dedupe key of a verified delivery, and
    /// the sandboxes it goes to (each once).
    fn route(
        &self,
        hook: &HookRecord,
        verified: &Verified,
        payload: &Value,
    ) -> (String, String, String, BTreeSet<warren_core::SandboxId>) {
        match &verified.github_event {
            Some(event) => {
                let about = github::about(payload);
                let targets = hook
                    .subscriptions
                    .iter()
                    .filter(|s| github::matches(s, event, &about))
                    .map(|s| s.sandbox.clone())
                    .collect();
                let repo = about.repository.unwrap_or_else(|| "unknown".into());
                (
                    format!("github.{event}"),
                    format!("github:{}", repo.chars().take(200).collect::<String>()),
                    format!("github:{}", verified.delivery),
                    targets,
                )
            }
            None => {
                let kind = standard::kind(payload);
                let targets = hook
                    .subscriptions
                    .iter()
                    .filter(|s| standard::matches(s, &kind))
                    .map(|s| s.sandbox.clone())
                    .collect();
                (
                    kind,
                    format!("hook:{}", hook.id),
                    format!("webhook:{}", verified.delivery),
                    targets,
                )
            }
        }
    }
}
