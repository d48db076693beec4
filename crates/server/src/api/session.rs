//! `/v1/session`: the dashboard's login, its session, and logout
//! (`crate::dashboard::session` holds the protocol). These routes stand
//! outside the key check: the login carries its key in the body, the
//! others read the cookie themselves. Logins and logouts are audited
//! (`session.open`, `session.close`, the key as the target).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use warren_api_types::{Session, SessionRequest};
use warren_core::{WarrenError, rfc3339};

use crate::audit::{Action, Audit, AuditActor, Event};
use crate::auth::{Authenticator, Caller};
use crate::dashboard::session::{self, SessionError};
use crate::error::ApiResult;
use crate::extract::ApiJson;

/// What the session routes need: the authenticator (with the session
/// table) and the audit log.
#[derive(Clone)]
pub struct SessionApi {
    pub auth: Authenticator,
    pub audit: Audit,
}

async fn record(audit: &Audit, caller: &Caller, action: Action, open: &session::Session) {
    let event =
        Event::new(action, caller.key_id.to_string()).with("expires_at", rfc3339(open.expires_at));
    audit
        .record_done(&AuditActor::from_caller(caller), event)
        .await;
}

fn answer(id: Option<&str>, open: &session::Session, headers: &HeaderMap) -> Response {
    let body = Json(Session {
        csrf_token: open.csrf_token.clone(),
        key: open.key.to_string(),
        expires_at: rfc3339(open.expires_at),
    });
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(id) = id {
        let cookie = session::set_cookie(id, session::LIFETIME, session::over_https(headers));
        h.insert(header::SET_COOKIE, cookie);
    }
    resp
}

/// Exchanges an API key for a dashboard session: sets the `warren_session`
/// cookie (HttpOnly, SameSite=Strict) and answers the token that every
/// call made with the cookie sends as `X-CSRF-Token` (a GET may send it as
/// the query parameter `csrf_token` instead). The session acts with the key's role and scopes for 12 hours,
/// or until the key is revoked or expires.
#[utoipa::path(post, path = "/v1/session", tag = "dashboard", security(()),
    request_body = SessionRequest,
    responses((status = 200, body = Session, description = "logged in; the cookie is set"),
        (status = 401, description = "not a valid API key: no cookie is set", body = warren_api_types::ApiError)))]
pub async fn login(
    State(api): State<SessionApi>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SessionRequest>,
) -> ApiResult<Response> {
    let auth = &api.auth;
    let caller = auth.caller_for_key(req.api_key.trim()).await?;
    let (id, open) = auth
        .sessions
        .open(caller.key_id.clone(), auth.clock.now())
        .map_err(WarrenError::from)?;
    record(&api.audit, &caller, Action::SessionOpen, &open).await;
    Ok(answer(Some(&id), &open, &headers))
}

/// The session the `warren_session` cookie names, if the call carries its
/// token (a reloaded page checks its session here).
#[utoipa::path(get, path = "/v1/session", tag = "dashboard", security(()),
    responses((status = 200, body = Session),
        (status = 401, description = "no cookie, or its session ended", body = warren_api_types::ApiError),
        (status = 403, description = "the cookie without its session's token", body = warren_api_types::ApiError)))]
pub async fn current(State(api): State<SessionApi>, headers: HeaderMap) -> ApiResult<Response> {
    let auth = &api.auth;
    let id = session::cookie(&headers).ok_or(SessionError::Unknown)?;
    auth.session_caller(id, &Method::GET, &headers, None)
        .await?;
    let open = auth.sessions.get(id, auth.clock.now())?;
    Ok(answer(None, &open, &headers))
}

/// Logs out: ends the cookie's session (with its CSRF token) and clears
/// the cookie. Without a live session there is nothing to end: 204 too.
#[utoipa::path(delete, path = "/v1/session", tag = "dashboard", security(()),
    responses((status = 204, description = "logged out; the cookie is cleared"),
        (status = 403, description = "a live session without its X-CSRF-Token", body = warren_api_types::ApiError)))]
pub async fn logout(State(api): State<SessionApi>, headers: HeaderMap) -> ApiResult<Response> {
    let auth = &api.auth;
    if let Some(id) = session::cookie(&headers)
        && let Ok(open) = auth.sessions.get(id, auth.clock.now())
    {
        session::check_token(&open, &Method::DELETE, &headers, None)?;
        // A session whose key is no longer usable is ended by the lookup.
        let caller = auth
            .session_caller(id, &Method::DELETE, &headers, None)
            .await;
        auth.sessions.close(id);
        if let Ok(caller) = caller {
            record(&api.audit, &caller, Action::SessionClose, &open).await;
        }
    }
    let clear = session::clear_cookie(session::over_https(&headers));
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}
