//! E2B's Secrets API over Warren's team secrets (`service::secrets`): the
//! same store, the same scopes as `/v1/secrets` (`secrets:use` reads
//! names, `secrets:manage` writes), the same `secret.set` /
//! `secret.delete` audit entries. Values go in and never come out.
//!
//! Mapping:
//! - A secret's `secretID` is `sec_` and its name; `{secretID}` in a path
//!   is that id or the name itself. Another team's secret, or one that
//!   does not exist, is 404.
//! - `POST /secrets` creates (201; 409 when the name is taken). Names
//!   follow E2B's rule (1-128 of letters, digits, `_` and `-`, lower-cased
//!   before storage, `sec_` reserved) and Warren's (1-63, starting with a
//!   letter or digit): both must hold.
//! - `POST /secrets/{secretID}` replaces the value (200), counting one
//!   more `currentVersion` (1 at creation). Only the current value is kept:
//!   earlier versions cannot be read or restored.
//! - `metadata` is not kept: a non-empty one is refused with 400, and
//!   answers carry `{}`.
//! - `GET /secrets` pages by name (`limit`, `nextToken`: the id of the last
//!   secret of the page before).

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use warren_core::{WarrenError, rfc3339};
use warren_store::{SecretRecord, SecretWrite};

use super::control::unsupported;
use super::error::E2bResult;
use super::query::{E2bQuery, Limit, QueryParams, unknown};
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::service::secrets::SecretValue;
use crate::state::AppState;

type Body<T> = Result<ApiJson<T>, AppError>;

/// The prefix of a secret's id.
const ID_PREFIX: &str = "sec_";
/// Longest name E2B accepts.
const MAX_E2B_NAME: usize = 128;

/// `POST /secrets`. The value is never printed.
#[derive(Deserialize)]
pub struct NewSecret {
    name: String,
    value: String,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

/// `POST /secrets/{secretID}`.
#[derive(Deserialize)]
pub struct SecretUpdate {
    value: String,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

/// A secret as E2B shows it: never its value.
#[derive(Debug, Serialize)]
pub struct SecretInfo {
    #[serde(rename = "secretID")]
    secret_id: String,
    name: String,
    #[serde(rename = "currentVersion")]
    current_version: u64,
    metadata: BTreeMap<String, String>,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(rename = "updatedAt")]
    updated_at: String,
}

fn info(r: SecretRecord) -> SecretInfo {
    SecretInfo {
        secret_id: format!("{ID_PREFIX}{}", r.name),
        name: r.name,
        current_version: r.version,
        metadata: BTreeMap::new(),
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    }
}

/// The name `{secretID}` names: the id's name, or the name itself.
fn name_of(secret_id: &str) -> &str {
    secret_id.strip_prefix(ID_PREFIX).unwrap_or(secret_id)
}

/// A name for a new secret in its canonical (lower-case) form; E2B's
/// rule and Warren's both hold.
fn new_name(name: &str) -> Result<String, WarrenError> {
    let e2b_ok = !name.is_empty()
        && name.len() <= MAX_E2B_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !e2b_ok {
        return Err(WarrenError::invalid(format!(
            "'{}' is not a valid secret name (1-{MAX_E2B_NAME} letters, digits, '_' or '-')",
            name.chars().take(80).collect::<String>()
        )));
    }
    let name = name.to_ascii_lowercase();
    if name.starts_with(ID_PREFIX) {
        return Err(WarrenError::invalid(format!(
            "secret names may not start with '{ID_PREFIX}': it marks secret ids"
        )));
    }
    warren_core::network::validate_secret_name(&name)?;
    Ok(name)
}

fn no_metadata(metadata: Option<&BTreeMap<String, String>>) -> E2bResult<()> {
    if metadata.is_some_and(|m| !m.is_empty()) {
        return Err(unsupported("secret metadata"));
    }
    Ok(())
}

/// `POST /secrets`: 201 with the new secret at version 1; 409 when the
/// team has a secret of that name.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewSecret>,
) -> E2bResult<(StatusCode, Json<SecretInfo>)> {
    let ApiJson(NewSecret {
        name,
        value,
        metadata,
    }) = body?;
    let value = SecretValue::new(value);
    let name = new_name(&name)?;
    no_metadata(metadata.as_ref())?;
    let stored = state
        .secrets
        .write(&caller, &name, value, SecretWrite::Create)
        .await?;
    Ok((StatusCode::CREATED, Json(info(stored.record))))
}

/// `POST /secrets/{secretID}`: 200 with the secret at its next version;
/// 404 when there is none.
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(secret_id): Path<String>,
    body: Body<SecretUpdate>,
) -> E2bResult<Json<SecretInfo>> {
    let ApiJson(SecretUpdate { value, metadata }) = body?;
    let value = SecretValue::new(value);
    no_metadata(metadata.as_ref())?;
    let stored = state
        .secrets
        .write(&caller, name_of(&secret_id), value, SecretWrite::Replace)
        .await?;
    Ok(Json(info(stored.record)))
}

/// `GET /secrets/{secretID}`.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(secret_id): Path<String>,
) -> E2bResult<Json<SecretInfo>> {
    let rec = state.secrets.get(&caller, name_of(&secret_id)).await?;
    Ok(Json(info(rec)))
}

/// `DELETE /secrets/{secretID}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(secret_id): Path<String>,
) -> E2bResult<StatusCode> {
    state.secrets.delete(&caller, name_of(&secret_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What `GET /secrets` asks for.
#[derive(Debug, Default, PartialEq)]
pub struct SecretQuery {
    limit: Limit,
    next_token: Option<String>,
}

impl QueryParams for SecretQuery {
    fn take(&mut self, key: &str, value: Cow<'_, str>) -> Result<(), WarrenError> {
        match key {
            "limit" => self.limit = value.parse()?,
            "nextToken" => {
                if !value.starts_with(ID_PREFIX) {
                    return Err(WarrenError::invalid(format!(
                        "nextToken '{value}' is malformed"
                    )));
                }
                self.next_token = Some(value.into_owned());
            }
            other => return Err(unknown(other)),
        }
        Ok(())
    }
}

/// `GET /secrets`: the team's secrets by name, a page at a time; the next
/// page holds the names after the token's, whatever was deleted meanwhile.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    E2bQuery(q): E2bQuery<SecretQuery>,
) -> E2bResult<impl IntoResponse> {
    let all = state.secrets.list(&caller).await?;
    let start = q.next_token.as_deref().map_or(0, |t| {
        all.partition_point(|r| r.name.as_str() <= name_of(t))
    });
    let rest = &all[start..];
    let page = &rest[..q.limit.0.min(rest.len())];
    let mut headers = HeaderMap::new();
    if page.len() < rest.len()
        && let Some(last) = page.last()
        && let Ok(v) = HeaderValue::from_str(&format!("{ID_PREFIX}{}", last.name))
    {
        headers.insert("x-next-token", v);
    }
    let body: Vec<_> = page.iter().cloned().map(info).collect();
    Ok((headers, Json(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_both_rules_and_are_lower_cased() {
        assert_eq!(new_name("OpenAI_Key-2").unwrap(), "openai_key-2");
        for bad in [
            "",
            "a.b",
            "a b",
            "a{b}",
            "sec_x",
            "SEC_x",
            "_lead",
            &"a".repeat(64),
            &"a".repeat(129),
        ] {
            assert_eq!(
                new_name(bad).unwrap_err().kind,
                warren_core::ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
        assert_eq!(name_of("sec_gh"), "gh");
        assert_eq!(name_of("gh"), "gh");
    }
}
