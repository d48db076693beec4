//! Team secrets: stored encrypted ([`cipher`]), listed by name only, and
//! revealed to the egress side of the daemon alone.
//!
//! Rules:
//! - A secret belongs to one team; another team's secret is "not found".
//! - Creating, replacing and deleting need `secrets:manage`; listing names
//!   and naming a secret in a sandbox's network policy need `secrets:use`
//!   (route rules in `api::routes`, and [`Secrets::check_injections`]).
//! - No API answer, audit entry or log line carries a value: the API shows
//!   names and times, `secret.set` / `secret.delete` entries carry the name.
//! - [`Secrets::reveal`] and [`Secrets::injected_headers`] are for the
//!   egress proxy, which puts values into requests on their way out; no
//!   route reaches them.
//! - A sandbox whose policy injects a secret gets [`SecretInjection::placeholder`]
//!   in the variable `env` names, never the value.

pub mod cipher;
pub mod value;

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;
use warren_core::network::{NetworkPolicy, SecretInjection, validate_secret_name};
use warren_core::{ErrorKind, Scope, TeamId, WarrenError};
use warren_egress::egress::InjectedHeader;
use warren_store::{SecretRecord, SecretWrite, Store, StoredSecret};

use crate::audit::Action;
use crate::audit::{Audit, AuditActor, Event};
use crate::auth::Caller;

pub use cipher::{CipherError, SecretsCipher};
pub use value::{MAX_VALUE_BYTES, SecretValue};

/// The secrets service.
pub struct Secrets {
    store: Arc<dyn Store>,
    cipher: SecretsCipher,
    audit: Audit,
}

impl From<CipherError> for WarrenError {
    fn from(e: CipherError) -> Self {
        WarrenError::internal(warren_core::error::chain(&e))
    }
}

/// Refuses values that are empty, too large, or unfit for an HTTP header.
fn validate_value(value: &SecretValue) -> Result<(), WarrenError> {
    if value.is_empty() {
        return Err(WarrenError::invalid("a secret value may not be empty"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(WarrenError::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "the secret value is {} bytes; at most {MAX_VALUE_BYTES} bytes (64 KiB) are allowed",
                value.len()
            ),
        ));
    }
    if value.expose().chars().any(char::is_control) {
        return Err(WarrenError::invalid(
            "secret values are sent in HTTP headers: they may not contain control characters such as newlines or tabs",
        ));
    }
    Ok(())
}

fn not_found(name: &str) -> WarrenError {
    WarrenError::not_found(format!("secret '{name}' not found in your team"))
}

impl Secrets {
    pub fn new(store: Arc<dyn Store>, cipher: SecretsCipher, audit: Audit) -> Self {
        Self {
            store,
            cipher,
            audit,
        }
    }

    /// The cipher values are sealed with, for other secrets the daemon
    /// keeps per team (a hook's secret under a name no team secret can
    /// have).
    pub(crate) fn cipher(&self) -> &SecretsCipher {
        &self.cipher
    }

    /// Creates or replaces the caller's team's secret `name`.
    pub async fn set(
        &self,
        caller: &Caller,
        name: &str,
        value: SecretValue,
    ) -> Result<StoredSecret, WarrenError> {
        self.write(caller, name, value, SecretWrite::Set).await
    }

    /// Writes the caller's team's secret `name` as `how` allows: a
    /// `Create` of a name the team has is 409, a `Replace` of one it lacks
    /// 404 (decided in the store's transaction).
    pub async fn write(
        &self,
        caller: &Caller,
        name: &str,
        value: SecretValue,
        how: SecretWrite,
    ) -> Result<StoredSecret, WarrenError> {
        if how == SecretWrite::Replace {
            validate_secret_name(name).map_err(|_| not_found(name))?;
        }
        validate_secret_name(name)?;
        validate_value(&value)?;
        let (ciphertext, nonce) = self.cipher.seal(&caller.team, name, &value);
        drop(value);
        let now = OffsetDateTime::now_utc();
        let stored = self
            .store
            .put_secret(
                SecretRecord {
                    team: caller.team.clone(),
                    name: name.to_owned(),
                    ciphertext,
                    nonce,
                    created_at: now,
                    created_by: caller.key_id.clone(),
                    updated_at: now,
                    updated_by: caller.key_id.clone(),
                    version: 0,
                },
                how,
            )
            .await
            .map_err(|e| match e {
                warren_store::StoreError::AlreadyExists(_) => WarrenError::new(
                    ErrorKind::AlreadyExists,
                    format!("your team already has a secret '{name}'"),
                ),
                warren_store::StoreError::NotFound(_) if how == SecretWrite::Replace => {
                    not_found(name)
                }
                other => other.into(),
            })?;
        let event = Event::new(Action::SecretSet, name.to_owned())
            .with("name", name)
            .with("replaced", !stored.created);
        self.audit
            .record_done(&AuditActor::from_caller(caller), event)
            .await;
        Ok(stored)
    }

    /// The caller's team's secret `name` (its row: the API shows names,
    /// times and versions only); "not found" for a name no secret can have.
    pub async fn get(&self, caller: &Caller, name: &str) -> Result<SecretRecord, WarrenError> {
        validate_secret_name(name).map_err(|_| not_found(name))?;
        self.store
            .get_secret(&caller.team, name)
            .await?
            .ok_or_else(|| not_found(name))
    }

    /// The caller's team's secrets (rows hold ciphertexts; the API shows
    /// names and times only).
    pub async fn list(&self, caller: &Caller) -> Result<Vec<SecretRecord>, WarrenError> {
        Ok(self.store.list_secrets(&caller.team).await?)
    }

    /// Deletes the caller's team's secret `name`. Sandboxes whose policy
    /// names it get no header for it from then on.
    pub async fn delete(&self, caller: &Caller, name: &str) -> Result<(), WarrenError> {
        validate_secret_name(name).map_err(|_| not_found(name))?;
        self.store
            .delete_secret(&caller.team, name)
            .await
            .map_err(|e| match e {
                warren_store::StoreError::NotFound(_) => not_found(name),
                other => other.into(),
            })?;
        let event = Event::new(Action::SecretDelete, name.to_owned()).with("name", name);
        self.audit
            .record_done(&AuditActor::from_caller(caller), event)
            .await;
        Ok(())
    }

    /// The value of `team`'s secret `name`: for the egress proxy only.
    pub async fn reveal(&self, team: &TeamId, name: &str) -> Result<SecretValue, WarrenError> {
        let rec = self
            .store
            .get_secret(team, name)
            .await?
            .ok_or_else(|| not_found(name))?;
        Ok(self.cipher.open(team, name, &rec.ciphertext, &rec.nonce)?)
    }

    /// The headers the egress proxy sets on requests of a `team` sandbox
    /// under `policy` to `host` (none when the policy injects nothing there).
    /// A secret deleted since the policy was accepted is skipped with a
    /// warning naming it; the request then goes out without that header.
    pub async fn injected_headers(
        &self,
        team: &TeamId,
        policy: &NetworkPolicy,
        host: &str,
    ) -> Result<Vec<InjectedHeader>, WarrenError> {
        let mut headers = Vec::new();
        for inj in policy.injections_for(host) {
            match self.reveal(team, &inj.secret).await {
                Ok(value) => headers.push(InjectedHeader {
                    name: inj.header.clone(),
                    value: inj.header_value(value.expose()),
                }),
                Err(e) if e.kind == ErrorKind::NotFound => {
                    tracing::warn!(team = %team, secret = %inj.secret, host, "injected secret no longer exists");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(headers)
    }

    /// Checks the injections of a policy a `caller` sets on a sandbox of
    /// `team` (at create or policy update) and returns the environment the
    /// sandbox gets for them: each `env` variable holding the placeholder.
    /// `403` without `secrets:use`; `400` for a secret the team does not
    /// have, or one variable asked to hold two placeholders.
    pub async fn check_injections(
        &self,
        caller: &Caller,
        team: &TeamId,
        policy: &NetworkPolicy,
    ) -> Result<BTreeMap<String, String>, WarrenError> {
        if policy.inject.is_empty() {
            return Ok(BTreeMap::new());
        }
        if !caller.permissions.contains(Scope::SecretsUse) {
            return Err(WarrenError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "network.inject uses team secrets: this key lacks the scope {} (its role is {})",
                    Scope::SecretsUse,
                    caller.role
                ),
            ));
        }
        let mut env = BTreeMap::new();
        for inj in &policy.inject {
            if self.store.get_secret(team, &inj.secret).await?.is_none() {
                return Err(WarrenError::invalid(format!(
                    "network.inject names secret '{}', which your team does not have; create it with `warren secret set {}`",
                    inj.secret, inj.secret
                )));
            }
            add_placeholder(&mut env, inj)?;
        }
        Ok(env)
    }
}

fn add_placeholder(
    env: &mut BTreeMap<String, String>,
    inj: &SecretInjection,
) -> Result<(), WarrenError> {
    let Some(var) = &inj.env else {
        return Ok(());
    };
    let placeholder = inj.placeholder();
    match env.get(var) {
        Some(other) if *other != placeholder => Err(WarrenError::invalid(format!(
            "network.inject sets env {var} for two different secrets; give each its own variable"
        ))),
        _ => {
            env.insert(var.clone(), placeholder);
            Ok(())
        }
    }
}

/// What the egress proxy reads the values to inject through, and the only
/// way out for a value: no route reveals one.
pub struct InjectionSource(pub Arc<Secrets>);

impl warren_egress::proxy::SecretSource for InjectionSource {
    fn secret(&self, team: &str, name: &str) -> warren_egress::proxy::SecretFuture {
        let secrets = self.0.clone();
        let (team, name) = (team.to_owned(), name.to_owned());
        Box::pin(async move {
            let team: TeamId = team.parse().ok()?;
            match secrets.reveal(&team, &name).await {
                Ok(value) => Some(value.expose().to_owned()),
                Err(e) => {
                    tracing::warn!(team = %team, secret = %name, error = %e.message, "a secret to inject could not be read");
                    None
                }
            }
        })
    }
}
