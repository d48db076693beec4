//! The audit endpoints: entries (filtered, paged, or exported as JSON
//! lines), inclusion and consistency proofs, signed heads and the public key.
//! Everything here reads; the log is written only by the audit service.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warren_api_types as api;
use warren_audit::{ExportedEntry, MerkleLog, NodeStore, SignedTreeHead};
use warren_core::{Scope, WarrenError};
use warren_store::{AuditFilter, SqliteAudit};

use super::stream::ndjson;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::state::AppState;

/// Entries per page when the caller names no `limit`.
const DEFAULT_LIMIT: u64 = 100;
/// Largest page of the JSON form.
const MAX_LIMIT: u64 = 1000;
/// Entries read per query while exporting.
const EXPORT_PAGE: u64 = 5000;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    /// Only entries about this sandbox.
    pub sandbox: Option<String>,
    /// Only entries with this actor in their chain, e.g. `user:<id>` or `sandbox:<id>`.
    pub actor: Option<String>,
    /// Only entries with this action, e.g. `process.exec`.
    pub action: Option<String>,
    /// Only entries at or after this time: RFC 3339 or Unix milliseconds.
    pub since: Option<String>,
    /// Only entries before this time: RFC 3339 or Unix milliseconds.
    pub until: Option<String>,
    /// Only entries with a larger index (paging: the previous `next_after`).
    pub after: Option<u64>,
    /// Page size, default 100, at most 1000; no limit for the JSON-lines export unless given.
    pub limit: Option<u64>,
    /// `jsonl` streams the export format (as does `Accept: application/x-ndjson`).
    pub format: Option<String>,
}

fn parse_time(field: &str, text: &str) -> Result<u64, WarrenError> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        WarrenError::invalid(format!(
            "{field} must be an RFC 3339 time (2026-01-31T12:00:00Z) or Unix milliseconds, not {text:?}"
        ))
    })?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| WarrenError::invalid(format!("{field} is before 1970")))
}

fn wants_jsonl(q: &EntriesQuery, headers: &HeaderMap) -> Result<bool, WarrenError> {
    match q.format.as_deref() {
        Some("jsonl") => return Ok(true),
        Some("json") => return Ok(false),
        Some(other) => {
            return Err(WarrenError::invalid(format!(
                "format must be json or jsonl, not {other:?}"
            )));
        }
        None => {}
    }
    Ok(headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson")))
}

pub fn line(e: ExportedEntry) -> api::AuditLine {
    let ExportedEntry { entry, leaf_hash } = e;
    api::AuditLine {
        entry: api::AuditEntry {
            index: entry.index,
            time_ms: entry.time_ms,
            team: entry.team,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            outcome: entry.outcome.as_str().to_owned(),
            details: entry.details,
        },
        leaf_hash: leaf_hash.map(|h| h.to_string()),
    }
}

fn head(h: SignedTreeHead) -> api::SignedHead {
    api::SignedHead {
        size: h.size,
        root_hash: h.root_hash.to_string(),
        timestamp_ms: h.timestamp_ms,
        signature: h.signature,
    }
}

/// Every entry matching `filter` (its `after` and `limit` included), read
/// page by page as the stream is consumed.
pub fn all_entries(
    store: SqliteAudit,
    filter: AuditFilter,
) -> impl futures::Stream<Item = ExportedEntry> + Send + 'static {
    let pages = futures::stream::unfold(Some((filter.after, filter.limit)), move |state| {
        let store = store.clone();
        let filter = filter.clone();
        async move {
            let (after, left) = state?;
            if left == 0 {
                return None;
            }
            let page = AuditFilter {
                after,
                limit: left.min(EXPORT_PAGE),
                ..filter
            };
            match store.entries(&page).await {
                Ok(entries) if entries.is_empty() => None,
                Ok(entries) => {
                    let last = entries.last().map(|e| e.entry.index);
                    let left = left - entries.len() as u64;
                    Some((futures::stream::iter(entries), Some((last, left))))
                }
                Err(e) => {
                    tracing::error!(error = %warren_core::error::chain(&e), "audit export cut short");
                    None
                }
            }
        }
    });
    pages.flatten()
}

/// Lists audit entries, oldest first; or exports them as JSON lines.
#[utoipa::path(get, path = "/v1/audit/entries", tag = "audit", params(EntriesQuery),
    responses((status = 200, body = api::AuditEntryList),
        (status = 400, body = api::ApiError)))]
pub async fn entries(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EntriesQuery>,
) -> ApiResult<Response> {
    let jsonl = wants_jsonl(&q, &headers)?;
    let filter = AuditFilter {
        team: visible_team(&caller),
        sandbox: q.sandbox.clone(),
        actor: q.actor.clone(),
        action: q.action.clone(),
        since_ms: q
            .since
            .as_deref()
            .map(|t| parse_time("since", t))
            .transpose()?,
        until_ms: q
            .until
            .as_deref()
            .map(|t| parse_time("until", t))
            .transpose()?,
        after: q.after,
        limit: 0,
    };
    let store = state.audit.store().clone();
    if jsonl {
        let limit = q.limit.unwrap_or(i64::MAX as u64);
        let lines = all_entries(store, AuditFilter { limit, ..filter }).map(line);
        return Ok(ndjson(lines));
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(WarrenError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}; export everything with format=jsonl"
        ))
        .into());
    }
    let page = store
        .entries(&AuditFilter {
            limit: limit + 1,
            ..filter
        })
        .await?;
    let more = page.len() as u64 > limit;
    let entries: Vec<api::AuditLine> = page.into_iter().take(limit as usize).map(line).collect();
    let next_after = if more {
        entries.last().map(|e| e.entry.index)
    } else {
        None
    };
    Ok(Json(api::AuditEntryList {
        entries,
        next_after,
    })
    .into_response())
}

/// The team whose entries `caller` may read: its own, or every team's
/// (`None`) for operators (`teams:manage`), who alone can export the whole
/// log for `warren audit verify`.
fn visible_team(caller: &Caller) -> Option<String> {
    (!caller.permissions.contains(Scope::TeamsManage)).then(|| caller.team.to_string())
}

async fn latest_head(store: &SqliteAudit) -> Result<SignedTreeHead, WarrenError> {
    store.latest_head().await?.ok_or_else(|| {
        WarrenError::precondition(
            "the audit log has no signed head yet; heads are signed every second while it grows",
        )
    })
}

/// Inclusion proof of entry `index` in the tree of the latest signed head.
#[utoipa::path(get, path = "/v1/audit/entries/{index}/proof", tag = "audit",
    params(("index" = u64, Path)),
    responses((status = 200, body = api::InclusionProof), (status = 404, body = api::ApiError),
        (status = 409, description = "not covered by a signed head yet", body = api::ApiError)))]
pub async fn proof(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(index): Path<String>,
) -> ApiResult<Json<api::InclusionProof>> {
    let index: u64 = index.parse().map_err(|_| {
        WarrenError::invalid(format!("entry index must be a number, not {index:?}"))
    })?;
    let store = state.audit.store();
    if let Some(team) = visible_team(&caller) {
        let own = AuditFilter {
            team: Some(team),
            after: index.checked_sub(1),
            limit: 1,
            ..AuditFilter::default()
        };
        let found = store.entries(&own).await?;
        if found.first().is_none_or(|e| e.entry.index != index) {
            return Err(WarrenError::not_found(format!("audit entry {index} not found")).into());
        }
    }
    let sth = latest_head(store).await?;
    let log = MerkleLog::open(store.clone())
        .await
        .map_err(crate::audit::AuditError::Open)?;
    if index >= log.size() {
        return Err(WarrenError::not_found(format!(
            "audit entry {index} does not exist: the log has {} entries",
            log.size()
        ))
        .into());
    }
    if index >= sth.size {
        return Err(WarrenError::precondition(format!(
            "audit entry {index} is not covered by the latest signed head (size {}) yet; retry in a second",
            sth.size
        ))
        .into());
    }
    let path = log
        .inclusion_proof(index, sth.size)
        .await
        .map_err(crate::audit::AuditError::Open)?;
    let leaf = store
        .leaf(index)
        .await
        .map_err(|e| WarrenError::internal(warren_core::error::chain(&e)))?
        .ok_or_else(|| WarrenError::internal(format!("audit leaf {index} is missing")))?;
    Ok(Json(api::InclusionProof {
        index,
        leaf_hash: leaf.to_string(),
        head: head(sth),
        proof: path.iter().map(ToString::to_string).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older size (e.g. a checkpoint's).
    pub from: u64,
    /// The newer size; default the latest signed head's.
    pub to: Option<u64>,
}

/// Consistency proof between the trees of `from` and `to` entries.
#[utoipa::path(get, path = "/v1/audit/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = api::ConsistencyProof), (status = 400, body = api::ApiError)))]
pub async fn consistency(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> ApiResult<Json<api::ConsistencyProof>> {
    let store = state.audit.store();
    let to = match q.to {
        Some(to) => to,
        None => latest_head(store).await?.size,
    };
    let log = MerkleLog::open(store.clone())
        .await
        .map_err(crate::audit::AuditError::Open)?;
    if q.from > to || to > log.size() {
        return Err(WarrenError::invalid(format!(
            "need from <= to <= {} (the log's size), got from={} to={to}",
            log.size(),
            q.from
        ))
        .into());
    }
    let open = crate::audit::AuditError::Open;
    let proof = log.consistency_proof(q.from, to).await.map_err(open)?;
    Ok(Json(api::ConsistencyProof {
        from: q.from,
        to,
        from_root: log.root(q.from).await.map_err(open)?.to_string(),
        to_root: log.root(to).await.map_err(open)?.to_string(),
        proof: proof.iter().map(ToString::to_string).collect(),
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HeadsQuery {
    /// Every head instead of the latest only.
    #[serde(default)]
    pub all: bool,
}

/// Signed tree heads (the latest, or all) and the public key they verify with.
#[utoipa::path(get, path = "/v1/audit/heads", tag = "audit", params(HeadsQuery),
    responses((status = 200, body = api::AuditHeads)))]
pub async fn heads(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HeadsQuery>,
) -> ApiResult<Json<api::AuditHeads>> {
    let store = state.audit.store();
    let heads = if q.all {
        store.heads().await?
    } else {
        store.latest_head().await?.into_iter().collect()
    };
    Ok(Json(api::AuditHeads {
        public_key: hex::encode(state.audit.public_key().as_bytes()),
        heads: heads.into_iter().map(head).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_milliseconds() {
        assert_eq!(
            parse_time("since", "1800000000000").unwrap(),
            1_800_000_000_000
        );
        assert_eq!(
            parse_time("since", "2027-01-15T08:00:00Z").unwrap(),
            1_800_000_000_000
        );
        let err = parse_time("until", "yesterday").unwrap_err();
        assert!(err.message.contains("until must be"), "{}", err.message);
    }
}
