//! Sandbox identity: the token each sandbox holds to call Warren's API for
//! its dispatcher, and how it gets there.
//!
//! At create (and after every restore) the daemon mints a token naming the
//! sandbox and its dispatcher and writes it, as root, to [`TOKEN_FILE`]
//! inside the sandbox (a pooled sandbox's claim hands it to the agent's
//! `/init`, which writes it); processes find the API at `WARREN_API_URL` (the
//! host's end of the sandbox's link, on the sandbox listener) and the file
//! at `WARREN_SANDBOX_TOKEN_FILE`. A rotation worker replaces the token once
//! half its lifetime has passed, so a reader of the file always finds one
//! that is valid for at least half the lifetime. The token never enters the
//! environment, so no process holds a stale copy in its environment block.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use warren_core::{SandboxId, SandboxState, WarrenError};
use warren_envd::EnvdClient;
use warren_store::{SandboxFilter, SandboxRecord};

use warren_audit::Outcome;

use super::Sandboxes;
use crate::audit::Action;
use crate::audit::{AuditActor, Event};
use crate::auth::TokenIssuer;

/// Where the sandbox's token lives inside it.
pub const TOKEN_FILE: &str = warren_envd::http_api::SANDBOX_TOKEN_FILE;
/// How often the rotation worker looks for tokens past half their life.
const ROTATE_INTERVAL: Duration = Duration::from_secs(30);

pub struct SandboxIdentity {
    issuer: TokenIssuer,
    /// The sandbox listener's port on the host.
    api_port: u16,
    /// When each live sandbox's current token was minted.
    minted: Mutex<HashMap<SandboxId, OffsetDateTime>>,
}

impl SandboxIdentity {
    pub fn new(issuer: TokenIssuer, api_port: u16) -> Self {
        Self {
            issuer,
            api_port,
            minted: Mutex::default(),
        }
    }

    /// The variables that tell processes where the API and token are.
    pub fn env(&self, id: &SandboxId, host_addr: IpAddr) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "WARREN_API_URL".to_owned(),
                format!("http://{host_addr}:{}", self.api_port),
            ),
            ("WARREN_SANDBOX_ID".to_owned(), id.to_string()),
            (
                "WARREN_SANDBOX_TOKEN_FILE".to_owned(),
                TOKEN_FILE.to_owned(),
            ),
        ])
    }

    /// Mints a token for `rec` and writes it into the sandbox; returns its
    /// expiry.
    async fn hand_out(
        &self,
        client: &EnvdClient,
        rec: &SandboxRecord,
    ) -> Result<OffsetDateTime, WarrenError> {
        let token = self
            .issuer
            .mint(&rec.id, &rec.owner, &rec.created_by, &rec.team);
        client
            .clone()
            .with_user("root")
            .write_file(TOKEN_FILE, token.text.into_bytes())
            .await
            .map_err(crate::agent_error)?;
        self.minted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rec.id.clone(), token.issued_at);
        Ok(token.expires_at)
    }

    /// Mints a token for `rec` to hand over in its agent's `/init`
    /// (`warren_token`); returns it and its expiry.
    pub(super) fn mint_for_init(&self, rec: &SandboxRecord) -> (String, OffsetDateTime) {
        let token = self
            .issuer
            .mint(&rec.id, &rec.owner, &rec.created_by, &rec.team);
        self.minted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rec.id.clone(), token.issued_at);
        (token.text, token.expires_at)
    }

    pub fn forget(&self, id: &SandboxId) {
        self.minted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Whether `id`'s token is past half its life (or unknown, as after a
    /// daemon restart).
    fn due(&self, id: &SandboxId, now: OffsetDateTime) -> bool {
        let minted = self.minted.lock().unwrap_or_else(|e| e.into_inner());
        minted
            .get(id)
            .is_none_or(|at| now - *at >= self.issuer.ttl() / 2)
    }
}

impl Sandboxes {
    /// Hands `rec` a fresh sandbox token and records `token.issue` (why:
    /// `start`, `rotate`, `restore`) in its team's audit trail. The token
    /// itself never enters the log.
    pub(crate) async fn issue_token(
        &self,
        client: &EnvdClient,
        rec: &SandboxRecord,
        why: &'static str,
    ) -> Result<(), WarrenError> {
        let expires_at = self.identity.hand_out(client, rec).await?;
        self.record_token_issue(rec, why, expires_at).await;
        Ok(())
    }

    /// Records `token.issue` for a token of `rec` handed out for `why`.
    pub(crate) async fn record_token_issue(
        &self,
        rec: &SandboxRecord,
        why: &'static str,
        expires_at: OffsetDateTime,
    ) {
        let event = Event::sandbox(Action::TokenIssue, &rec.id, Outcome::Ok)
            .with("reason", why)
            .with("subject", format!("user:{}", rec.owner))
            .with("expires_at", warren_core::rfc3339(expires_at));
        let actor = AuditActor::system("identity").in_team(&rec.team);
        self.audit.record_done(&actor, event).await;
    }

    /// Replaces running sandboxes' tokens before they expire, until
    /// `shutdown` fires.
    pub async fn run_token_rotation(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(ROTATE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let filter = SandboxFilter {
                states: vec![SandboxState::Running],
                ..SandboxFilter::default()
            };
            let running = match self.store.list_sandboxes(&filter).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "token rotation could not list sandboxes");
                    continue;
                }
            };
            let now = self.clock.now();
            // Pooled sandboxes hold no token until a claim issues one.
            let pool = warren_store::pool_team();
            let due = running
                .iter()
                .filter(|r| r.team != pool && self.identity.due(&r.id, now));
            for rec in due {
                let result = match self.agents.client(&rec.id, None).await {
                    Ok(client) => self.issue_token(&client, rec, "rotate").await,
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    tracing::warn!(sandbox = %rec.id, error = %e.message, "could not rotate the sandbox token");
                }
            }
        }
    }
}
