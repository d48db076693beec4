//! Lifecycle webhooks out (`docs/webhooks.md`).
//!
//! - Registrations belong to a team; another team's is not found. A
//!   team holds at most [`MAX_PER_TEAM`]. The signing secret is sealed at
//!   rest under the daemon's secrets key (bound to the registration's id)
//!   and shown once, at registration.
//! - Events come from one place: [`Webhooks::emit`], called by the
//!   function every sandbox lifecycle act is audited through
//!   (`service/record.rs`), after the act. It commits the event and one
//!   pending delivery per matching registration in one transaction; a
//!   failure is logged and never fails the act.
//! - The worker ([`worker`]) sends what is due and records every attempt;
//!   the outbox is durable, so a restart resumes pending deliveries.
//! - Destinations are checked at registration (literal addresses) and at
//!   every connect (resolved addresses) ([`destination`]).

pub mod backoff;
mod client;
pub mod destination;
pub mod names;
pub mod payload;
mod worker;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use warren_audit::Outcome;
use warren_core::{KeyId, TeamId, WarrenError};
use warren_store::{
    DeliveryRecord, EventPage, LifecycleEventRecord, SandboxRecord, Store, WebhookFlavor,
    WebhookRecord,
};

use crate::audit::Action;
use crate::clock::Clock;
use crate::service::secrets::{SecretValue, SecretsCipher};
use crate::signature;
pub use client::{MAX_RESPONSE, TIMEOUT};
pub use destination::{DestinationError, Destinations};

/// Most registrations one team holds.
pub const MAX_PER_TEAM: u32 = 20;
/// Longest registration name.
pub const MAX_NAME: usize = 128;
/// Longest secret accepted for an E2B registration.
pub const MAX_E2B_SECRET: usize = 256;
/// Deliveries in flight at once, all registrations together.
pub const CONCURRENCY: usize = 16;
/// How long lifecycle events (and their delivery logs) are kept.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A registration as asked for.
#[derive(Debug, Clone)]
pub struct Registration {
    pub url: String,
    /// Warren's event names (E2B's are mapped by the E2B router).
    pub events: Vec<String>,
    pub secret: Option<String>,
    pub name: Option<String>,
    pub flavor: WebhookFlavor,
    pub enabled: bool,
}

/// Changes to a registration (E2B's PATCH); `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub secret: Option<String>,
}

/// The webhook service. Cheap to share.
pub struct Webhooks {
    store: Arc<dyn Store>,
    cipher: SecretsCipher,
    clock: Clock,
    sender: client::Sender,
    first_retry: Duration,
    inflight: Mutex<HashSet<(String, String)>>,
    slots: Arc<Semaphore>,
}

fn new_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    // Shaped as a version-4 UUID (E2B's clients expect one).
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        8 | (b[8] & 0x3),
        &h[17..20],
        &h[20..32]
    )
}

fn sealed_name(id: &str) -> String {
    format!("webhook:{id}")
}

impl Webhooks {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        cipher: SecretsCipher,
        clock: Clock,
        destinations: Destinations,
        first_retry: Duration,
    ) -> Self {
        Self {
            store,
            cipher,
            clock,
            sender: client::Sender::new(Arc::new(destinations)),
            first_retry,
            inflight: Mutex::new(HashSet::new()),
            slots: Arc::new(Semaphore::new(CONCURRENCY)),
        }
    }

    fn check_url(&self, url: &str) -> Result<(), WarrenError> {
        self.sender
            .destinations()
            .check_url(url)
            .map(|_| ())
            .map_err(|e| WarrenError::invalid(format!("url: {e}")))
    }

    fn check_secret(flavor: WebhookFlavor, secret: &str) -> Result<(), WarrenError> {
        match flavor {
            WebhookFlavor::Warren => signature::secret_key(secret)
                .map(|_| ())
                .map_err(|e| WarrenError::invalid(format!("secret: {e}"))),
            WebhookFlavor::E2b if secret.is_empty() || secret.len() > MAX_E2B_SECRET => Err(
                WarrenError::invalid(format!("signatureSecret must be 1-{MAX_E2B_SECRET} bytes")),
            ),
            WebhookFlavor::E2b => Ok(()),
        }
    }

    fn check_name(name: &str) -> Result<(), WarrenError> {
        if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(WarrenError::invalid(format!(
                "name must be at most {MAX_NAME} printable characters"
            )));
        }
        Ok(())
    }

    /// Registers a webhook for `team`; returns it with its secret (given
    /// or generated), which is never shown again.
    pub async fn create(
        &self,
        team: &TeamId,
        by: &KeyId,
        reg: Registration,
    ) -> Result<(WebhookRecord, String), WarrenError> {
        self.check_url(&reg.url)?;
        let events = match reg.flavor {
            WebhookFlavor::Warren => names::validate(&reg.events)?,
            WebhookFlavor::E2b => reg.events,
        };
        let name = reg.name.unwrap_or_default();
        Self::check_name(&name)?;
        let secret = reg.secret.unwrap_or_else(signature::new_secret);
        Self::check_secret(reg.flavor, &secret)?;
        let id = new_id();
        let (ciphertext, nonce) =
            self.cipher
                .seal(team, &sealed_name(&id), &SecretValue::new(secret.clone()));
        let rec = WebhookRecord {
            id,
            team: team.clone(),
            name,
            url: reg.url,
            events,
            flavor: reg.flavor,
            enabled: reg.enabled,
            secret_ciphertext: ciphertext,
            secret_nonce: nonce,
            created_by: by.clone(),
            created_at: self.clock.now(),
        };
        self.store.insert_webhook(rec.clone(), MAX_PER_TEAM).await?;
        tracing::info!(webhook = %rec.id, team = %team, "webhook registered");
        Ok((rec, secret))
    }

    /// The team's registrations, oldest first.
    pub async fn list(&self, team: &TeamId) -> Result<Vec<WebhookRecord>, WarrenError> {
        Ok(self.store.list_webhooks(team).await?)
    }

    /// The team's registration `id`; another team's is not found.
    pub async fn get(&self, team: &TeamId, id: &str) -> Result<WebhookRecord, WarrenError> {
        match self.store.get_webhook(id).await? {
            Some(rec) if &rec.team == team => Ok(rec),
            _ => Err(WarrenError::not_found(format!(
                "webhook {} not found",
                id.chars().take(64).collect::<String>()
            ))),
        }
    }

    /// Applies `change` to the team's registration `id`.
    pub async fn update(
        &self,
        team: &TeamId,
        id: &str,
        change: Change,
    ) -> Result<WebhookRecord, WarrenError> {
        let mut rec = self.get(team, id).await?;
        if let Some(url) = change.url {
            self.check_url(&url)?;
            rec.url = url;
        }
        if let Some(events) = change.events {
            rec.events = match rec.flavor {
                WebhookFlavor::Warren => names::validate(&events)?,
                WebhookFlavor::E2b => events,
            };
        }
        if let Some(name) = change.name {
            Self::check_name(&name)?;
            rec.name = name;
        }
        if let Some(enabled) = change.enabled {
            rec.enabled = enabled;
        }
        if let Some(secret) = change.secret {
            Self::check_secret(rec.flavor, &secret)?;
            let (c, n) = self
                .cipher
                .seal(team, &sealed_name(&rec.id), &SecretValue::new(secret));
            rec.secret_ciphertext = c;
            rec.secret_nonce = n;
        }
        self.store.update_webhook(&rec).await?;
        Ok(rec)
    }

    /// Deletes the team's registration `id` and its deliveries.
    pub async fn delete(&self, team: &TeamId, id: &str) -> Result<(), WarrenError> {
        let rec = self.get(team, id).await?;
        self.store.delete_webhook(&rec.id).await?;
        tracing::info!(webhook = %rec.id, team = %team, "webhook deleted");
        Ok(())
    }

    /// The delivery log of the team's registration `id`, newest first.
    pub async fn deliveries(
        &self,
        team: &TeamId,
        id: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, WarrenError> {
        let rec = self.get(team, id).await?;
        Ok(self.store.webhook_deliveries(&rec.id, limit).await?)
    }

    /// A sandbox's lifecycle events (the caller has checked the sandbox is
    /// the team's).
    pub async fn sandbox_events(
        &self,
        sandbox: &str,
        page: &EventPage,
    ) -> Result<Vec<LifecycleEventRecord>, WarrenError> {
        Ok(self.store.sandbox_lifecycle_events(sandbox, page).await?)
    }

    /// The tap: records the lifecycle event audited `action` of `rec` is,
    /// if any, with a delivery for every registration of its team that
    /// wants it. A failure is logged; the act stands.
    pub(crate) async fn emit(
        &self,
        rec: &SandboxRecord,
        action: Action,
        outcome: Outcome,
        details: &Map<String, Value>,
    ) {
        let Some(kind) = names::for_action(action, outcome) else {
            return;
        };
        let mut data = payload::data(rec, details);
        if let (Some(d), Action::SandboxKill | Action::SandboxExpire) =
            (data.as_object_mut(), action)
        {
            let reason = if action == Action::SandboxExpire {
                "expired"
            } else {
                "request"
            };
            d.insert("reason".into(), reason.into());
        }
        let event = LifecycleEventRecord {
            id: new_id(),
            team: rec.team.clone(),
            sandbox: rec.id.to_string(),
            kind: kind.to_owned(),
            data: data.to_string(),
            at: self.clock.now(),
        };
        match self.store.record_lifecycle_event(event).await {
            Ok(n) if n > 0 => {
                tracing::debug!(sandbox = %rec.id, kind, n, "webhook deliveries queued")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                sandbox = %rec.id,
                kind,
                error = %warren_core::error::chain(&e),
                "a lifecycle event could not be recorded; its webhooks are not sent"
            ),
        }
    }

    /// Records the team-wide event `kind` (a budget's warning or excess,
    /// which no one sandbox is the subject of) with a delivery for every
    /// registration of `team` that wants it; `sandbox` is empty. A failure
    /// is logged.
    pub(crate) async fn emit_team(&self, team: &TeamId, kind: &str, data: Value) {
        let event = LifecycleEventRecord {
            id: new_id(),
            team: team.clone(),
            sandbox: String::new(),
            kind: kind.to_owned(),
            data: data.to_string(),
            at: self.clock.now(),
        };
        if let Err(e) = self.store.record_lifecycle_event(event).await {
            tracing::warn!(
                %team,
                kind,
                error = %warren_core::error::chain(&e),
                "a team event could not be recorded; its webhooks are not sent"
            );
        }
    }

    /// The registration's secret, opened.
    fn secret(&self, rec: &WebhookRecord) -> Result<String, String> {
        self.cipher
            .open(
                &rec.team,
                &sealed_name(&rec.id),
                &rec.secret_ciphertext,
                &rec.secret_nonce,
            )
            .map(|v| v.expose().to_owned())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shaped_as_uuids() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, new_id());
    }
}
