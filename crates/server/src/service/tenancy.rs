//! Teams, users and keys: who may create which, and the first start.
//!
//! Rules:
//! - Operator admins (`teams:manage`) create teams; a team is born with its
//!   first user and that user's admin key, in one transaction.
//! - Team admins (`keys:manage`) create users and keys in their own team and
//!   revoke its keys; a key's rights never exceed the rights of the key that
//!   minted it.
//! - Another team's users and keys are "not found", never "forbidden".
//! - On first start (no team at all) the daemon creates the operator team
//!   `default` with user `admin` and prints that user's admin key once.
//! - Every creation and revocation is recorded in the audit log
//!   (`team.create`, `user.create`, `key.create`, `key.revoke`), in the team
//!   it concerns.

use std::sync::Arc;

use time::OffsetDateTime;
use warren_core::authz::key_permissions;
use warren_core::{KeyId, Role, Scope, TeamId, UserId, WarrenError};
use warren_store::{KeyRecord, Store, TeamRecord, UserRecord};

use crate::audit::Action;
use crate::audit::{Audit, AuditActor, Event};
use crate::auth::{ApiKey, Caller, Pepper};
use crate::clock::Clock;

/// Longest key lifetime a caller may ask for: ten years.
const MAX_KEY_LIFETIME_S: u64 = 10 * 365 * 24 * 3600;

/// A minted key: its row and its full text (shown once).
pub struct MintedKey {
    pub record: KeyRecord,
    pub secret: String,
}

/// What a new key should be.
pub struct KeyRequest {
    pub name: String,
    pub user: Option<UserId>,
    pub role: Role,
    pub scopes: Option<Vec<Scope>>,
    pub expires_in_s: Option<u64>,
    /// Hand the text out in E2B's spelling ([`ApiKey::e2b_form`]).
    pub e2b: bool,
}

pub struct Tenancy {
    store: Arc<dyn Store>,
    pepper: Pepper,
    audit: Audit,
    clock: Clock,
}

/// A team name: 1-63 of `a-z 0-9 -`, starting with a letter or digit.
pub fn validate_team_name(name: &str) -> Result<(), WarrenError> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(WarrenError::invalid(format!(
            "team name '{}' must be 1-63 characters of a-z, 0-9 and '-', not starting with '-'",
            name.chars().take(64).collect::<String>()
        )))
    }
}

/// A user or key name: 1-128 of letters, digits and `. _ - @ +` (and, for
/// key labels, spaces).
fn validate_name(what: &str, name: &str, spaces: bool) -> Result<(), WarrenError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c) || (spaces && c == ' '));
    if ok {
        Ok(())
    } else {
        Err(WarrenError::invalid(format!(
            "{what} '{}' must be 1-128 characters of letters, digits and . _ - @ +",
            name.chars().take(64).collect::<String>()
        )))
    }
}

impl Tenancy {
    pub fn new(store: Arc<dyn Store>, pepper: Pepper, audit: Audit, clock: Clock) -> Self {
        Self {
            store,
            pepper,
            audit,
            clock,
        }
    }

    async fn record_key(&self, actor: &AuditActor, action: Action, key: &KeyRecord) {
        let event = Event::new(action, key.id.to_string())
            .with("name", key.name.as_str())
            .with("user", key.user.to_string())
            .with("role", key.role.as_str())
            .with(
                "scopes",
                key.scopes
                    .as_ref()
                    .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            );
        self.audit
            .record_done(&actor.in_team(&key.team), event)
            .await;
    }

    fn mint(
        &self,
        team: &TeamId,
        user: &UserId,
        req: &KeyRequest,
    ) -> Result<MintedKey, WarrenError> {
        validate_name("key name", &req.name, true)?;
        let now = self.clock.now();
        let expires_at = match req.expires_in_s {
            None => None,
            Some(s) if (1..=MAX_KEY_LIFETIME_S).contains(&s) => {
                Some(now + time::Duration::seconds(s as i64))
            }
            Some(s) => {
                return Err(WarrenError::invalid(format!(
                    "expires_in_s must be between 1 and {MAX_KEY_LIFETIME_S}, got {s}"
                )));
            }
        };
        let key = ApiKey::generate(&self.pepper);
        Ok(MintedKey {
            record: KeyRecord {
                id: key.id,
                team: team.clone(),
                user: user.clone(),
                name: req.name.clone(),
                hash: key.hash,
                role: req.role,
                scopes: req.scopes.clone(),
                created_at: now,
                expires_at,
                revoked_at: None,
            },
            secret: if req.e2b {
                ApiKey::e2b_form(&key.text)
            } else {
                key.text
            },
        })
    }

    fn new_team(name: &str, admin: &str, operator: bool) -> (TeamRecord, UserRecord) {
        // Creation times are records, not expiries: the system's clock.
        let now = OffsetDateTime::now_utc();
        let team = TeamRecord {
            id: TeamId::generate(),
            name: name.to_owned(),
            operator,
            created_at: now,
        };
        let user = UserRecord {
            id: UserId::generate(),
            team: team.id.clone(),
            name: admin.to_owned(),
            created_at: now,
        };
        (team, user)
    }

    /// Creates the operator team when there is no team at all; returns the
    /// admin key's text then, `None` otherwise.
    pub async fn bootstrap(&self) -> Result<Option<String>, WarrenError> {
        if !self.store.list_teams().await?.is_empty() {
            return Ok(None);
        }
        let (team, user) = Self::new_team("default", "admin", true);
        let key = self.mint(&team.id, &user.id, &admin_key("admin"))?;
        self.store
            .create_team(team.clone(), user, key.record.clone())
            .await?;
        self.record_team(&AuditActor::system("bootstrap"), &team, &key.record)
            .await;
        Ok(Some(key.secret))
    }

    async fn record_team(&self, actor: &AuditActor, team: &TeamRecord, key: &KeyRecord) {
        let event = Event::new(Action::TeamCreate, team.id.to_string())
            .with("name", team.name.as_str())
            .with("operator", team.operator)
            .with("admin", key.user.to_string());
        self.audit
            .record_done(&actor.in_team(&team.id), event)
            .await;
        self.record_key(actor, Action::KeyCreate, key).await;
    }

    pub async fn create_team(
        &self,
        caller: &Caller,
        name: &str,
        admin: &str,
    ) -> Result<(TeamRecord, UserRecord, MintedKey), WarrenError> {
        validate_team_name(name)?;
        validate_name("user name", admin, false)?;
        let (team, user) = Self::new_team(name, admin, false);
        let key = self.mint(&team.id, &user.id, &admin_key("admin"))?;
        self.store
            .create_team(team.clone(), user.clone(), key.record.clone())
            .await?;
        self.record_team(&AuditActor::from_caller(caller), &team, &key.record)
            .await;
        Ok((team, user, key))
    }

    pub async fn teams(&self) -> Result<Vec<TeamRecord>, WarrenError> {
        Ok(self.store.list_teams().await?)
    }

    pub async fn team(&self, id: &TeamId) -> Result<TeamRecord, WarrenError> {
        self.store
            .get_team(id)
            .await?
            .ok_or_else(|| WarrenError::not_found(format!("team {id} not found")))
    }

    pub async fn create_user(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<UserRecord, WarrenError> {
        validate_name("user name", name, false)?;
        let user = UserRecord {
            id: UserId::generate(),
            team: caller.team.clone(),
            name: name.to_owned(),
            created_at: self.clock.now(),
        };
        self.store.insert_user(user.clone()).await?;
        let event = Event::new(Action::UserCreate, user.id.to_string()).with("name", name);
        self.audit
            .record_done(&AuditActor::from_caller(caller), event)
            .await;
        Ok(user)
    }

    pub async fn users(&self, caller: &Caller) -> Result<Vec<UserRecord>, WarrenError> {
        Ok(self.store.list_users(&caller.team).await?)
    }

    /// The caller's team's user `id`, or not found.
    pub async fn user(&self, caller: &Caller, id: &UserId) -> Result<UserRecord, WarrenError> {
        match self.store.get_user(id).await? {
            Some(u) if u.team == caller.team => Ok(u),
            _ => Err(WarrenError::not_found(format!("user {id} not found"))),
        }
    }

    pub async fn create_key(
        &self,
        caller: &Caller,
        req: KeyRequest,
    ) -> Result<MintedKey, WarrenError> {
        let user = match &req.user {
            Some(id) => self.user(caller, id).await?.id,
            None => caller.user.clone(),
        };
        let operator = self.team(&caller.team).await?.operator;
        let wanted = key_permissions(req.role, req.scopes.as_deref(), operator);
        if req.role > caller.role || !caller.permissions.covers(wanted) {
            return Err(WarrenError::new(
                warren_core::ErrorKind::PermissionDenied,
                format!(
                    "a key may not mint a key with more rights than its own (yours: role {}, scopes {})",
                    caller.role,
                    scope_names(&caller.permissions.scopes())
                ),
            ));
        }
        let key = self.mint(&caller.team, &user, &req)?;
        self.store.insert_key(key.record.clone()).await?;
        self.record_key(
            &AuditActor::from_caller(caller),
            Action::KeyCreate,
            &key.record,
        )
        .await;
        Ok(key)
    }

    pub async fn keys(&self, caller: &Caller) -> Result<Vec<KeyRecord>, WarrenError> {
        Ok(self.store.list_keys(Some(&caller.team)).await?)
    }

    /// Revokes one of the caller's team's keys; another team's is not found.
    pub async fn revoke_key(&self, caller: &Caller, id: &KeyId) -> Result<KeyRecord, WarrenError> {
        let not_found = || WarrenError::not_found(format!("API key {id} not found"));
        let key = self.store.get_key(id).await?.ok_or_else(not_found)?;
        if key.team != caller.team {
            return Err(not_found());
        }
        self.store.revoke_key(id, self.clock.now()).await?;
        let key = self.store.get_key(id).await?.ok_or_else(not_found)?;
        self.record_key(&AuditActor::from_caller(caller), Action::KeyRevoke, &key)
            .await;
        Ok(key)
    }
}

fn admin_key(name: &str) -> KeyRequest {
    KeyRequest {
        name: name.to_owned(),
        user: None,
        role: Role::Admin,
        scopes: None,
        expires_in_s: None,
        e2b: false,
    }
}

fn scope_names(scopes: &[Scope]) -> String {
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    names.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_team_name("acme-2").is_ok());
        for bad in ["", "-x", "Acme", "a/b", "a b", &"x".repeat(64)] {
            assert!(validate_team_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name("user name", "alice@example.com", false).is_ok());
        assert!(validate_name("user name", "a b", false).is_err());
        assert!(validate_name("key name", "ci key", true).is_ok());
        assert!(validate_name("key name", "../x\n", true).is_err());
    }
}
