//! Access grants: what a client holds to reach one sandbox's agent or its
//! own servers (E2B's `envdAccessToken` and `trafficAccessToken`, Warren's
//! `traffic_token`).
//!
//! A grant is handed to one API key for one sandbox and one kind
//! ([`GrantKind`]); it reads `wgr_<id>.<mac>`, where `id` is random and
//! stored with the sandbox, the key and an expiry, and `mac` is
//! HMAC-SHA256 over `wgr_<id>` under a daemon secret kept outside the
//! database. It is accepted only while all of these hold:
//! - the MAC matches and the row exists (a forged or deleted grant fails);
//! - it names the sandbox the request addresses, with a kind that opens
//!   the port asked for (a grant never opens another sandbox);
//! - it has not expired;
//! - the key it was handed to is neither revoked nor expired (checked at
//!   every use; revoking a key also deletes its grants).
//!
//! Grants belong to the sandbox's id, not to one instance of it: they
//! survive a pause and resume (E2B's SDKs keep using the token they were
//! given at create after `sandbox.connect()`). They open nothing once the
//! sandbox is killed or fails (the proxies reach live sandboxes only, and
//! answer 502 as E2B's edge does; the rows go with the sandbox's), and die
//! when it is rolled back (its grants are deleted; clients ask for new
//! ones). A fork or a sandbox made from a snapshot is a new id: nothing
//! granted for the source opens it.
//!
//! Volume tokens ([`volume`]) are signed under the same secret, for one
//! volume instead of one sandbox.
//!
//! The agent inside never sees a grant. Its own token is known to the
//! daemon alone (`crate::agents::Agents::token`): the proxies check the grant and
//! put the agent's token in its place, and re-sign E2B's signed file URLs.

mod volume;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use warren_core::{ErrorKind, KeyId, SandboxId, WarrenError};
use warren_store::{GrantKind, GrantRecord, Store};

use super::keys::Pepper;
use super::middleware::usable;
use crate::clock::Clock;

pub use volume::{VolumeHolder, VolumeTokenError};

const PREFIX: &str = "wgr_";

/// Shortest and longest grant lifetime a deployment may configure, seconds.
pub const GRANT_TTL_RANGE_S: std::ops::RangeInclusive<u64> = 5 * 60..=30 * 24 * 60 * 60;
/// Lifetime when none is configured: a day, E2B's longest running time.
pub const DEFAULT_GRANT_TTL_S: u64 = 24 * 60 * 60;

/// Why a presented grant is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    #[error("malformed access token")]
    Malformed,
    #[error("unknown or withdrawn access token: ask for the sandbox again for a current one")]
    Unknown,
    #[error("the access token is not this sandbox's")]
    OtherSandbox,
    #[error("this token opens the sandbox's own ports, not its agent")]
    WrongKind,
    #[error("the access token expired: ask for the sandbox again for a current one")]
    Expired,
    #[error("the key this access token was handed to is revoked or expired")]
    KeyRevoked,
    #[error("{0}")]
    Store(String),
}

impl From<GrantError> for WarrenError {
    fn from(e: GrantError) -> Self {
        let kind = match e {
            GrantError::Store(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Unauthenticated,
        };
        WarrenError::new(kind, e.to_string())
    }
}

/// Issues and checks grants.
#[derive(Clone)]
pub struct Grants {
    store: Arc<dyn Store>,
    secret: Pepper,
    ttl: time::Duration,
    clock: Clock,
}

impl Grants {
    pub fn new(store: Arc<dyn Store>, secret: Pepper, ttl_s: u64, clock: Clock) -> Self {
        Self {
            store,
            secret,
            ttl: time::Duration::seconds(i64::try_from(ttl_s).unwrap_or(i64::MAX)),
            clock,
        }
    }

    /// A grant of `kind` for `sandbox` to `key`: the key's current one when
    /// more than half its lifetime is left, else a new one.
    pub async fn issue(
        &self,
        sandbox: &SandboxId,
        key: &KeyId,
        kind: GrantKind,
    ) -> Result<String, WarrenError> {
        let now = self.clock.now();
        let new = GrantRecord {
            id: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
            sandbox: sandbox.clone(),
            kind,
            key: key.clone(),
            created_at: now,
            expires_at: now + self.ttl,
        };
        let grant = self.store.issue_grant(new, now + self.ttl / 2).await?;
        Ok(self.text(&grant.id))
    }

    /// The grant `text` if it opens `kinds` of `sandbox` now. Whether the
    /// grant is authentic and current is judged before what it names, so a
    /// refusal reads the same whatever sandbox was asked for.
    pub async fn check(
        &self,
        text: &str,
        sandbox: Option<&SandboxId>,
        kinds: &[GrantKind],
    ) -> Result<GrantRecord, GrantError> {
        let id = self.authentic_id(text)?;
        let grant = self
            .store
            .get_grant(id)
            .await
            .map_err(|e| GrantError::Store(e.to_string()))?
            .ok_or(GrantError::Unknown)?;
        let now = self.clock.now();
        if grant.expires_at <= now {
            return Err(GrantError::Expired);
        }
        let key = self
            .store
            .get_key(&grant.key)
            .await
            .map_err(|e| GrantError::Store(e.to_string()))?
            .ok_or(GrantError::KeyRevoked)?;
        usable(&key, now).map_err(|_| GrantError::KeyRevoked)?;
        if sandbox != Some(&grant.sandbox) {
            return Err(GrantError::OtherSandbox);
        }
        if !kinds.contains(&grant.kind) {
            return Err(GrantError::WrongKind);
        }
        Ok(grant)
    }

    /// The text of each unexpired envd grant of a live sandbox, for finding
    /// the sandbox a signed URL was made for.
    pub async fn live_envd(&self) -> Result<Vec<(SandboxId, String)>, WarrenError> {
        let grants = self
            .store
            .live_grants(GrantKind::Envd, self.clock.now())
            .await?;
        Ok(grants
            .into_iter()
            .map(|g| {
                let text = self.text(&g.id);
                (g.sandbox, text)
            })
            .collect())
    }

    /// Withdraws every grant for `sandbox` (a rollback): clients ask again.
    pub async fn withdraw(&self, sandbox: &SandboxId) -> Result<(), WarrenError> {
        self.store.delete_grants(sandbox).await?;
        Ok(())
    }

    fn text(&self, id: &str) -> String {
        let signed = format!("{PREFIX}{id}");
        let mac = URL_SAFE_NO_PAD.encode(self.secret.mac(signed.as_bytes()));
        format!("{signed}.{mac}")
    }

    /// The id inside an authentic grant text.
    fn authentic_id<'t>(&self, text: &'t str) -> Result<&'t str, GrantError> {
        let (signed, mac) = text.rsplit_once('.').ok_or(GrantError::Malformed)?;
        let id = signed.strip_prefix(PREFIX).ok_or(GrantError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| GrantError::Malformed)?;
        let expected = self.secret.mac(signed.as_bytes());
        if !bool::from(expected.ct_eq(&mac)) {
            return Err(GrantError::Unknown);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;
    use warren_core::{Limits, Persistence, Role, SandboxState, TeamId, UserId};
    use warren_store::{KeyRecord, NewSandbox, SqliteStore, TeamRecord, UserRecord};

    /// A store with one team, its admin key and one running sandbox.
    async fn fixture(dir: &tempfile::TempDir) -> (Arc<dyn Store>, KeyId, SandboxId) {
        let store = SqliteStore::open(&dir.path().join("warren.db"))
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let (team, user) = (TeamId::generate(), UserId::generate());
        let key = KeyRecord {
            id: KeyId::generate(),
            team: team.clone(),
            user: user.clone(),
            name: "k".into(),
            hash: vec![0; 32],
            role: Role::Admin,
            scopes: None,
            created_at: now,
            expires_at: None,
            revoked_at: None,
        };
        let team_row = TeamRecord {
            id: team.clone(),
            name: "t".into(),
            operator: false,
            created_at: now,
        };
        let user_row = UserRecord {
            id: user.clone(),
            team: team.clone(),
            name: "u".into(),
            created_at: now,
        };
        store
            .create_team(team_row, user_row, key.clone())
            .await
            .unwrap();
        let sandbox = store
            .create_sandbox(NewSandbox {
                id: SandboxId::generate(),
                template: "base".into(),
                template_version: None,
                limits: Limits::default(),
                env: Default::default(),
                metadata: Default::default(),
                team,
                owner: user,
                created_by: key.id.clone(),
                expires_at: now + time::Duration::hours(1),
                persistence: Persistence::default(),
                source_snapshot: None,
                network: Default::default(),
                inbox: Default::default(),
            })
            .await
            .unwrap();
        store
            .transition(&sandbox.id, SandboxState::Creating, SandboxState::Running)
            .await
            .unwrap();
        (Arc::new(store), key.id, sandbox.id)
    }

    fn secret(dir: &tempfile::TempDir) -> Pepper {
        Pepper::load_or_create(&dir.path().join("grant-secret")).unwrap()
    }

    #[tokio::test]
    async fn a_grant_opens_its_sandbox_for_its_kinds_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let (store, key, sbx) = fixture(&dir).await;
        let grants = Grants::new(store.clone(), secret(&dir), 3600, Clock::system());
        let text = grants.issue(&sbx, &key, GrantKind::Envd).await.unwrap();
        let ok = grants.check(&text, Some(&sbx), &[GrantKind::Envd]).await;
        assert_eq!(ok.unwrap().key, key);
        let other = SandboxId::generate();
        for (target, kinds, want) in [
            (
                Some(&other),
                &[GrantKind::Envd][..],
                GrantError::OtherSandbox,
            ),
            (None, &[GrantKind::Envd][..], GrantError::OtherSandbox),
            (Some(&sbx), &[GrantKind::Traffic][..], GrantError::WrongKind),
        ] {
            assert_eq!(grants.check(&text, target, kinds).await.unwrap_err(), want);
        }
        // Another daemon's secret does not know it.
        let elsewhere = tempfile::tempdir().unwrap();
        let foreign = Grants::new(store.clone(), secret(&elsewhere), 3600, Clock::system());
        let refused = foreign.check(&text, Some(&sbx), &[GrantKind::Envd]).await;
        assert_eq!(refused.unwrap_err(), GrantError::Unknown);

        // A grant of no lifetime is expired as soon as it is made.
        let brief = Grants::new(store, secret(&dir), 0, Clock::system());
        let traffic = brief.issue(&sbx, &key, GrantKind::Traffic).await.unwrap();
        let refused = brief
            .check(&traffic, Some(&sbx), &[GrantKind::Traffic])
            .await;
        assert_eq!(refused.unwrap_err(), GrantError::Expired);
    }

    #[tokio::test]
    async fn a_withdrawn_grant_or_one_of_a_revoked_key_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, key, sbx) = fixture(&dir).await;
        let grants = Grants::new(store.clone(), secret(&dir), 3600, Clock::system());
        let envd = grants.issue(&sbx, &key, GrantKind::Envd).await.unwrap();
        grants.withdraw(&sbx).await.unwrap();
        let refused = grants.check(&envd, Some(&sbx), &[GrantKind::Envd]).await;
        assert_eq!(refused.unwrap_err(), GrantError::Unknown);

        let again = grants.issue(&sbx, &key, GrantKind::Envd).await.unwrap();
        assert_ne!(again, envd);
        assert_eq!(
            grants.live_envd().await.unwrap(),
            vec![(sbx.clone(), again.clone())]
        );
        store
            .revoke_key(&key, OffsetDateTime::now_utc())
            .await
            .unwrap();
        let refused = grants.check(&again, Some(&sbx), &[GrantKind::Envd]).await;
        assert_eq!(refused.unwrap_err(), GrantError::Unknown);
        assert!(grants.live_envd().await.unwrap().is_empty());
    }
}
