//! Inbound webhook hooks (`docs/events.md`, "Sources"): a team's endpoint
//! for GitHub or any Standard Webhooks sender, and the subscriptions that
//! route its deliveries to the team's sandboxes' inboxes.
//!
//! Invariants:
//! - A hook and every sandbox it delivers to belong to one team: creating
//!   one that names another team's sandbox is "not found", and another
//!   team's hook is "not found" on every route.
//! - The secret is shown once, at create; the store keeps only its
//!   ciphertext, sealed by the team secrets' cipher for the row
//!   `(team, "hook/<id>")` (no team secret can have that name), so it
//!   never appears in an answer, a log line or the audit log.
//! - A delivery reaches an inbox only through [`Sandboxes::send_event`]
//!   with a dedupe key naming the sender's delivery id ([`deliver`]).

mod deliver;
pub mod github;
pub mod standard;

use std::sync::Arc;

use rand::RngCore as _;
use warren_core::{ErrorKind, SandboxId, SandboxState, TeamId, WarrenError};
use warren_store::{HookKind, HookRecord, Store, Subscription};

use super::Sandboxes;
use super::secrets::{SecretValue, Secrets};
use crate::audit::{Action, Audit, AuditActor, Event};
use crate::auth::Caller;
use crate::clock::Clock;
use crate::signature;

pub use deliver::{Delivered, DeliveryHeaders, MAX_DELIVERY_BYTES, SEEN_WINDOW};

/// Most subscriptions one hook has.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// What a caller asks for at create.
pub struct NewHook {
    pub kind: String,
    pub secret: Option<String>,
    pub subscriptions: Vec<NewSubscription>,
}

/// One subscription as asked for.
pub struct NewSubscription {
    pub sandbox: String,
    pub repository: Option<String>,
    pub pull_request: Option<u64>,
    pub branch: Option<String>,
    pub events: Vec<String>,
}

/// The hooks service.
pub struct Hooks {
    store: Arc<dyn Store>,
    sandboxes: Arc<Sandboxes>,
    secrets: Arc<Secrets>,
    audit: Audit,
    clock: Clock,
}

fn not_found(id: &str) -> WarrenError {
    WarrenError::not_found(format!(
        "hook '{}' not found",
        id.chars().take(64).collect::<String>()
    ))
}

/// The row name a hook's secret is sealed for.
fn sealed_name(id: &str) -> String {
    format!("hook/{id}")
}

fn event_name_ok(e: &str) -> bool {
    (1..=128).contains(&e.len())
        && e.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/-".contains(c))
}

fn check_secret(kind: HookKind, secret: &str) -> Result<(), WarrenError> {
    match kind {
        HookKind::Github => {
            let ok = (16..=256).contains(&secret.chars().count())
                && !secret.chars().any(char::is_control);
            if !ok {
                return Err(WarrenError::invalid(
                    "a GitHub hook's secret must be 16-256 printable characters",
                ));
            }
        }
        HookKind::Standard => {
            signature::secret_key(secret).map_err(|e| WarrenError::invalid(e.to_string()))?;
        }
    }
    Ok(())
}

fn new_secret(kind: HookKind) -> String {
    match kind {
        HookKind::Github => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            hex::encode(bytes)
        }
        HookKind::Standard => signature::new_secret(),
    }
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("hk_{}", hex::encode(bytes))
}

fn check_subscription(kind: HookKind, s: &NewSubscription) -> Result<(), WarrenError> {
    if let Some(bad) = s.events.iter().find(|e| !event_name_ok(e)) {
        return Err(WarrenError::invalid(format!(
            "event type '{}' must be 1-128 of a-z A-Z 0-9 . _ : / -",
            bad.chars().take(64).collect::<String>()
        )));
    }
    if s.events.len() > 64 {
        return Err(WarrenError::invalid(
            "a subscription names at most 64 event types",
        ));
    }
    match kind {
        HookKind::Github => {
            let repo = s.repository.as_deref().unwrap_or_default();
            if !github::valid_repository(repo) {
                return Err(WarrenError::invalid(
                    "a GitHub subscription needs repository: owner/name",
                ));
            }
            if s.events.is_empty() {
                return Err(WarrenError::invalid(format!(
                    "a GitHub subscription names its event types, e.g. {}",
                    github::KNOWN_EVENTS.join(", ")
                )));
            }
            if let Some(branch) = &s.branch {
                let ok = (1..=255).contains(&branch.len())
                    && !branch.chars().any(|c| c.is_control() || c == ' ');
                if !ok {
                    return Err(WarrenError::invalid(
                        "branch must be 1-255 characters without spaces",
                    ));
                }
            }
        }
        HookKind::Standard => {
            if s.repository.is_some() || s.pull_request.is_some() || s.branch.is_some() {
                return Err(WarrenError::invalid(
                    "repository, pull_request and branch are for GitHub hooks; a standard hook's subscription names a sandbox and event types",
                ));
            }
        }
    }
    Ok(())
}

impl Hooks {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        sandboxes: Arc<Sandboxes>,
        secrets: Arc<Secrets>,
        audit: Audit,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            sandboxes,
            secrets,
            audit,
            clock,
        }
    }

    /// The sandbox `raw` names if it is the team's and alive; otherwise
    /// the same "not found" as for an unknown one.
    async fn team_sandbox(&self, team: &TeamId, raw: &str) -> Result<SandboxId, WarrenError> {
        let not_found = || {
            WarrenError::not_found(format!(
                "sandbox '{}' not found",
                raw.chars().take(64).collect::<String>()
            ))
        };
        let id: SandboxId = raw.parse().map_err(|_| not_found())?;
        match self.sandboxes.lookup(&id).await? {
            Some(rec) if rec.team == *team && !rec.state.is_terminal() => Ok(id),
            Some(rec) if rec.team == *team && rec.state == SandboxState::Failed => Err(
                WarrenError::precondition(format!("sandbox {id} has failed and takes no events")),
            ),
            _ => Err(not_found()),
        }
    }

    /// Creates a hook for the caller's team; returns it and its secret,
    /// which is never shown again.
    pub async fn create(
        &self,
        caller: &Caller,
        new: NewHook,
    ) -> Result<(HookRecord, String), WarrenError> {
        let kind: HookKind = new.kind.parse().map_err(WarrenError::invalid)?;
        if new.subscriptions.is_empty() || new.subscriptions.len() > MAX_SUBSCRIPTIONS {
            return Err(WarrenError::invalid(format!(
                "a hook has 1-{MAX_SUBSCRIPTIONS} subscriptions"
            )));
        }
        for s in &new.subscriptions {
            check_subscription(kind, s)?;
        }
        let secret = match new.secret {
            Some(s) => {
                check_secret(kind, &s)?;
                s
            }
            None => new_secret(kind),
        };
        let mut subscriptions = Vec::with_capacity(new.subscriptions.len());
        for (n, s) in (0..).zip(new.subscriptions) {
            subscriptions.push(Subscription {
                id: n,
                sandbox: self.team_sandbox(&caller.team, &s.sandbox).await?,
                repository: s.repository,
                pull_request: s.pull_request,
                branch: s.branch,
                events: s.events,
            });
        }
        let id = new_id();
        let (ciphertext, nonce) = self.secrets.cipher().seal(
            &caller.team,
            &sealed_name(&id),
            &SecretValue::new(secret.clone()),
        );
        let hook = HookRecord {
            id: id.clone(),
            team: caller.team.clone(),
            kind,
            ciphertext,
            nonce,
            created_by: caller.key_id.clone(),
            created_at: self.clock.now(),
            accepted: 0,
            rejected: 0,
            last_delivery_at: None,
            subscriptions,
        };
        self.store.insert_hook(hook.clone()).await?;
        let sandboxes: Vec<String> = hook
            .subscriptions
            .iter()
            .map(|s| s.sandbox.to_string())
            .collect();
        let event = Event::new(Action::HookCreate, id.clone())
            .with("kind", kind.as_str())
            .with("sandboxes", sandboxes);
        self.audit
            .record_done(&AuditActor::from_caller(caller), event)
            .await;
        let stored = self
            .store
            .get_hook(&id)
            .await?
            .ok_or_else(|| not_found(&id))?;
        Ok((stored, secret))
    }

    /// The team's hooks, oldest first.
    pub async fn list(&self, team: &TeamId) -> Result<Vec<HookRecord>, WarrenError> {
        Ok(self.store.list_hooks(team).await?)
    }

    /// The team's hook `id`; another team's is "not found".
    pub async fn get(&self, team: &TeamId, id: &str) -> Result<HookRecord, WarrenError> {
        match self.store.get_hook(id).await? {
            Some(hook) if hook.team == *team => Ok(hook),
            _ => Err(not_found(id)),
        }
    }

    /// Deletes the team's hook: its deliveries are refused from now on.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), WarrenError> {
        self.store
            .delete_hook(&caller.team, id)
            .await
            .map_err(|e| match WarrenError::from(e) {
                e if e.kind == ErrorKind::NotFound => not_found(id),
                e => e,
            })?;
        self.audit
            .record_done(
                &AuditActor::from_caller(caller),
                Event::new(Action::HookDelete, id.to_owned()),
            )
            .await;
        Ok(())
    }

    /// Adds a subscription to the team's hook; returns the hook.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        id: &str,
        new: NewSubscription,
    ) -> Result<HookRecord, WarrenError> {
        let hook = self.get(&caller.team, id).await?;
        check_subscription(hook.kind, &new)?;
        let sub = Subscription {
            id: 0,
            sandbox: self.team_sandbox(&caller.team, &new.sandbox).await?,
            repository: new.repository,
            pull_request: new.pull_request,
            branch: new.branch,
            events: new.events,
        };
        let sandbox = sub.sandbox.to_string();
        let n = self
            .store
            .add_hook_subscription(&caller.team, id, sub, MAX_SUBSCRIPTIONS as u32)
            .await
            .map_err(|e| match WarrenError::from(e) {
                e if e.kind == ErrorKind::NotFound => not_found(id),
                e => e,
            })?;
        let event = Event::new(Action::HookSubscribe, id.to_owned())
            .with("subscription", n)
            .with("sandbox", sandbox);
        self.audit
            .record_done(&AuditActor::from_caller(caller), event)
            .await;
        self.get(&caller.team, id).await
    }

    /// Removes subscription `sub` from the team's hook.
    pub async fn unsubscribe(
        &self,
        caller: &Caller,
        id: &str,
        sub: u32,
    ) -> Result<(), WarrenError> {
        self.get(&caller.team, id).await?;
        self.store
            .remove_hook_subscription(&caller.team, id, sub)
            .await
            .map_err(|e| match WarrenError::from(e) {
                e if e.kind == ErrorKind::NotFound => {
                    WarrenError::not_found(format!("hook {id} has no subscription {sub}"))
                }
                e => e,
            })?;
        let event = Event::new(Action::HookUnsubscribe, id.to_owned()).with("subscription", sub);
        self.audit
            .record_done(&AuditActor::from_caller(caller), event)
            .await;
        Ok(())
    }

    /// Forgets seen delivery ids older than [`SEEN_WINDOW`] every hour
    /// until `shutdown` fires.
    pub async fn run_pruner(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            match self
                .store
                .forget_hook_deliveries(self.clock.now() - SEEN_WINDOW)
                .await
            {
                Ok(n) if n > 0 => tracing::debug!(forgotten = n, "hook delivery ids pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not prune hook delivery ids"),
            }
        }
    }
}
