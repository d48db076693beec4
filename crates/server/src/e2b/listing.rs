//! E2B's sandbox listings, `GET /sandboxes` and `GET /v2/sandboxes`: the
//! caller's team's live sandboxes, filtered, ordered by start time and
//! paged.
//!
//! Query (every key optional, a bad value a 400 naming it):
//! - `metadata`: a URL-encoded `k=v&k2=v2` string (keys and values
//!   percent-encoded once more by the SDK); every pair must match.
//! - `state`: comma-separated `running`/`paused`; none lists both.
//! - `template`: `NAME` (any version of it), `NAME:TAG` (the version the
//!   tag names now) or `NAME@VERSION`. A sandbox's template is the one it
//!   runs on, as its `templateID` shows; a sandbox started from a snapshot
//!   (or forked) runs on the template the snapshot was taken from.
//! - `startedAfter`: an RFC 3339 time; sandboxes started at or after it.
//! - `order`: `desc` (newest first, the default) or `asc`, by start time
//!   then id, over the whole list before paging.
//! - `limit`, `nextToken`: pages ([`super::paging::page_after`]); the
//!   token is a cursor, so a sandbox that is paused, resumed or killed
//!   between pages is neither skipped nor listed twice.
//!
//! `X-Total-Running` counts the running sandboxes that match, before
//! paging, when running ones were asked for.

use std::borrow::Cow;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warren_core::{SandboxState, WarrenError};
use warren_store::{SandboxFilter, SandboxRecord};
use warren_template::TemplateRef;
use warren_template::reference::Selector;

use super::control::{e2b_state, listed};
use super::error::E2bResult;
use super::paging::{Cursor, page_after};
use super::query::{self, E2bQuery, Limit, QueryParams};
use crate::auth::Caller;
use crate::state::AppState;

/// The direction of a listing by start time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

/// What a listing asks for.
#[derive(Debug, Default, PartialEq)]
pub struct ListQuery {
    filter: SandboxFilter,
    template: Option<TemplateRef>,
    /// Whether `template` named a tag (`NAME:TAG`), not just a name.
    template_tagged: bool,
    started_after: Option<OffsetDateTime>,
    order: Order,
    limit: Limit,
    next_token: Option<Cursor>,
}

impl QueryParams for ListQuery {
    fn take(&mut self, key: &str, value: Cow<'_, str>) -> Result<(), WarrenError> {
        match key {
            "metadata" => {
                for (mk, mv) in url::form_urlencoded::parse(value.as_bytes()) {
                    self.filter
                        .metadata
                        .insert(percent_decode(&mk), percent_decode(&mv));
                }
            }
            "state" => {
                for s in value.split(',').filter(|s| !s.is_empty()) {
                    self.filter.states.extend(match s {
                        // As `e2b_state` shows them.
                        "running" => [SandboxState::Running, SandboxState::Resuming],
                        "paused" => [SandboxState::Paused, SandboxState::Pausing],
                        other => {
                            return Err(WarrenError::invalid(format!(
                                "unknown state '{other}' (expected running or paused)"
                            )));
                        }
                    });
                }
            }
            "template" => {
                let r = TemplateRef::parse(&value).map_err(|e| {
                    WarrenError::invalid(format!("template '{value}' is not a template: {e}"))
                })?;
                self.template_tagged = value.contains(':');
                self.template = Some(r);
            }
            "startedAfter" => self.started_after = Some(started_after(&value)?),
            "order" => {
                self.order = match &*value {
                    "asc" => Order::Asc,
                    "desc" => Order::Desc,
                    other => {
                        return Err(WarrenError::invalid(format!(
                            "order must be asc or desc, got '{other}'"
                        )));
                    }
                }
            }
            "limit" => self.limit = value.parse()?,
            "nextToken" => self.next_token = Some(Cursor::parse(&value)?),
            other => return Err(query::unknown(other)),
        }
        Ok(())
    }
}

/// An RFC 3339 time. A `+` offset sent unencoded arrives as a space and is
/// read as the `+` it was.
fn started_after(value: &str) -> Result<OffsetDateTime, WarrenError> {
    OffsetDateTime::parse(&value.replace(' ', "+"), &Rfc3339).map_err(|_| {
        WarrenError::invalid(format!(
            "startedAfter must be an RFC 3339 time with an offset \
             (e.g. 2025-01-31T12:00:00Z), got '{value}'"
        ))
    })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Which template versions a `template` filter matches.
enum TemplateMatch {
    /// Every version of the template.
    Any(String),
    /// One version of it.
    Version(String, String),
    /// A tag no version carries: nothing.
    Nothing,
}

impl TemplateMatch {
    async fn of(state: &AppState, r: &TemplateRef, tagged: bool) -> Self {
        match &r.selector {
            Selector::Version(v) => Self::Version(r.name.clone(), v.clone()),
            Selector::Tag(_) if !tagged => Self::Any(r.name.clone()),
            Selector::Tag(tag) => {
                // An unknown template or tag matches no sandbox.
                let versions = state.templates.versions(&r.name).await;
                let version = versions.ok().and_then(|vs| {
                    vs.versions
                        .into_iter()
                        .find(|v| v.template.tags.contains(tag))
                        .and_then(|v| v.template.version)
                });
                match version {
                    Some(v) => Self::Version(r.name.clone(), v),
                    None => Self::Nothing,
                }
            }
        }
    }

    fn matches(&self, rec: &SandboxRecord) -> bool {
        match self {
            Self::Any(name) => rec.template == *name,
            Self::Version(name, v) => {
                rec.template == *name && rec.template_version.as_deref() == Some(v)
            }
            Self::Nothing => false,
        }
    }
}

/// `GET /sandboxes`, `GET /v2/sandboxes`: a page of the team's sandboxes
/// as the query asks (see the module docs).
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    E2bQuery(q): E2bQuery<ListQuery>,
) -> E2bResult<impl IntoResponse> {
    let wants_running =
        q.filter.states.is_empty() || q.filter.states.contains(&SandboxState::Running);
    let template = match &q.template {
        Some(r) => Some(TemplateMatch::of(&state, r, q.template_tagged).await),
        None => None,
    };
    let mut all = state.sandboxes.list(&caller.team, q.filter).await?;
    all.retain(|r| {
        template.as_ref().is_none_or(|t| t.matches(r))
            && q.started_after.is_none_or(|after| r.created_at >= after)
    });
    all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let descending = q.order == Order::Desc;
    if descending {
        all.reverse();
    }
    let running = all
        .iter()
        .filter(|r| e2b_state(r.state) == "running")
        .count();
    let (page, mut headers) = page_after(
        &all,
        |r| (r.created_at, r.id.as_str()),
        q.next_token.as_ref(),
        descending,
        q.limit.0,
    );
    if wants_running {
        headers.insert("x-total-running", HeaderValue::from(running));
    }
    let body: Vec<_> = page
        .iter()
        .cloned()
        .map(|r| listed(&state, r, None))
        .collect();
    Ok((headers, Json(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2b::paging::DEFAULT_PAGE;

    #[test]
    fn list_query_reads_what_the_sdk_sends() {
        // The SDK: urlencode({quote(k): quote(v)}), then the query encoding;
        // `startedAfter` is `datetime.astimezone().isoformat()`.
        let q: ListQuery = query::parse(Some(
            "metadata=team%3Dx%26my%2520key%3Da%252Fb&state=running,paused&limit=2\
             &nextToken=1700000000000000000.sbx1&order=asc&template=base%3Av2\
             &startedAfter=2026-12-07T06%3A24%3A24.123456%2B01%3A00",
        ))
        .unwrap();
        assert_eq!(q.filter.metadata.get("team").map(String::as_str), Some("x"));
        assert_eq!(
            q.filter.metadata.get("my key").map(String::as_str),
            Some("a/b")
        );
        assert_eq!(
            q.filter.states,
            vec![
                SandboxState::Running,
                SandboxState::Resuming,
                SandboxState::Paused,
                SandboxState::Pausing
            ]
        );
        assert_eq!(q.limit, Limit(2));
        assert_eq!(q.next_token.unwrap().id, "sbx1");
        assert_eq!(q.order, Order::Asc);
        assert_eq!(q.template.unwrap().to_string(), "base:v2");
        assert!(q.template_tagged);
        assert_eq!(
            q.started_after.unwrap(),
            time::macros::datetime!(2026-12-07 05:24:24.123456 UTC)
        );
        let q = query::parse::<ListQuery>(None).unwrap();
        assert_eq!((q.limit, q.order), (Limit(DEFAULT_PAGE), Order::Desc));
        // An unencoded `+` offset arrives as a space.
        let q: ListQuery = query::parse(Some("startedAfter=2026-01-01T00:00:00+02:00")).unwrap();
        assert_eq!(
            q.started_after.unwrap(),
            time::macros::datetime!(2025-12-31 22:00 UTC)
        );
    }

    #[test]
    fn repeated_metadata_and_state_keys_add_up() {
        let q: ListQuery = query::parse(Some(
            "metadata=a%3D1&state=running&metadata=b%3D2%26a%3D3&state=&state=paused&order=asc",
        ))
        .unwrap();
        let metadata: Vec<_> = q
            .filter
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(metadata, [("a", "3"), ("b", "2")]);
        assert_eq!(q.filter.states.len(), 4);
        let q: ListQuery = query::parse(Some("metadata=&state=,")).unwrap();
        assert!(q.filter.metadata.is_empty() && q.filter.states.is_empty());
    }

    #[test]
    fn bad_values_name_what_is_wrong() {
        for (query, message) in [
            (
                "state=running,asleep",
                "unknown state 'asleep' (expected running or paused)",
            ),
            ("order=newest", "order must be asc or desc, got 'newest'"),
            ("order=", "order must be asc or desc, got ''"),
            ("order=ASC", "order must be asc or desc, got 'ASC'"),
            ("nextToken=sbx1", "nextToken 'sbx1' is malformed"),
            ("limit=0", "limit must be 1-100, got '0'"),
            ("colour=red", "unknown query parameter 'colour'"),
        ] {
            let e = query::parse::<ListQuery>(Some(query)).unwrap_err();
            assert_eq!(e.kind, warren_core::ErrorKind::InvalidArgument, "{query}");
            assert_eq!(e.message, message, "{query}");
        }
        for bad in [
            "startedAfter=yesterday",
            "startedAfter=2026-01-01",
            "startedAfter=2026-01-01T00:00:00",
            "startedAfter=",
        ] {
            let e = query::parse::<ListQuery>(Some(bad)).unwrap_err();
            assert!(e.message.starts_with("startedAfter must be"), "{bad}: {e}");
        }
        for bad in [
            "template=",
            "template=..",
            "template=a%2Fb",
            "template=base:",
        ] {
            let e = query::parse::<ListQuery>(Some(bad)).unwrap_err();
            assert_eq!(e.kind, warren_core::ErrorKind::InvalidArgument, "{bad}");
            assert!(e.message.starts_with("template '"), "{bad}: {e}");
        }
    }
}
