//! Dashboard sessions: an API key exchanged for a cookie.
//!
//! Protocol: `POST /v1/session` with a valid key opens a session: a
//! random id (32 bytes, hex) sent as the cookie [`COOKIE`] (HttpOnly,
//! SameSite=Strict, Path=/, Secure when the page came over https), and a
//! second random value, the session's token, answered in the body only. A
//! request acts as the key the session was opened with when it carries the
//! cookie (and no key of its own) and the token: in [`CSRF_HEADER`], or,
//! for a GET (a browser's `EventSource` cannot set headers), in the query
//! parameter [`TOKEN_PARAM`]. Tokens are compared in constant time.
//!
//! Why every request, reads too: the cookie is sent by the browser to
//! anything on the API's origin, and pages a sandbox serves through the
//! path-style port proxy (`/v1/sandboxes/{id}/ports/…`) are on that
//! origin. The token lives only in the dashboard's tab (its
//! `sessionStorage`), which such a page cannot read (the dashboard may not
//! be framed, and it isolates its window), so the cookie alone opens
//! nothing, not even a read.
//!
//! Invariants: sessions live in the daemon's memory (a restart logs every
//! dashboard out); each holds only its key's id, so the key's role, scopes,
//! revocation and expiry are read at every request; a session ends
//! [`LIFETIME`] after it was opened, at logout, or when its key is found
//! unusable; at most [`MAX_SESSIONS`] are open at once (expired ones are
//! dropped first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, Method};
use rand::RngCore;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use warren_core::{ErrorKind, KeyId, WarrenError};

/// The cookie that carries the session id.
pub const COOKIE: &str = "warren_session";
/// The header that carries the session's token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The query parameter that carries it on a GET.
pub const TOKEN_PARAM: &str = "csrf_token";
/// How long a session lasts.
pub const LIFETIME: Duration = Duration::hours(12);
/// Sessions open at once, across every key.
pub const MAX_SESSIONS: usize = 10_000;

/// Why a session cannot act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no such session: log in again")]
    Unknown,
    #[error("the session expired: log in again")]
    Expired,
    #[error("the session's API key was revoked or expired: log in again")]
    KeyUnusable,
    #[error(
        "missing X-CSRF-Token: every call made with the session cookie must carry the token the login answered (on a GET, the csrf_token parameter will do)"
    )]
    CsrfMissing,
    #[error("wrong X-CSRF-Token for this session")]
    CsrfMismatch,
    #[error("too many dashboard sessions are open: try again later")]
    Full,
}

impl From<SessionError> for WarrenError {
    fn from(e: SessionError) -> Self {
        let kind = match e {
            SessionError::Unknown | SessionError::Expired | SessionError::KeyUnusable => {
                ErrorKind::Unauthenticated
            }
            SessionError::CsrfMissing | SessionError::CsrfMismatch => ErrorKind::PermissionDenied,
            SessionError::Full => ErrorKind::ResourceExhausted,
        };
        WarrenError::new(kind, e.to_string())
    }
}

/// One open session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The key it acts as.
    pub key: KeyId,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

/// The open sessions, by id; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    open: Arc<Mutex<HashMap<String, Session>>>,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session for `key` at `now`: its id and the session.
    pub fn open(&self, key: KeyId, now: OffsetDateTime) -> Result<(String, Session), SessionError> {
        let mut open = self.locked();
        if open.len() >= MAX_SESSIONS {
            open.retain(|_, s| s.expires_at > now);
        }
        if open.len() >= MAX_SESSIONS {
            return Err(SessionError::Full);
        }
        let session = Session {
            key,
            csrf_token: random_hex(),
            expires_at: now + LIFETIME,
        };
        let id = random_hex();
        open.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The live session `id`; an expired one is dropped.
    pub fn get(&self, id: &str, now: OffsetDateTime) -> Result<Session, SessionError> {
        let mut open = self.locked();
        let session = open.get(id).ok_or(SessionError::Unknown)?;
        if session.expires_at <= now {
            open.remove(id);
            return Err(SessionError::Expired);
        }
        Ok(session.clone())
    }

    /// Ends session `id` (nothing if there is none).
    pub fn close(&self, id: &str) {
        self.locked().remove(id);
    }

    /// How many sessions are held (expired ones not yet dropped too).
    pub fn len(&self) -> usize {
        self.locked().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Refuses a request that lacks the session's token: in the header, or
/// on a GET in the query string `query`.
pub fn check_token(
    session: &Session,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), SessionError> {
    let in_query = || {
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(name, _)| name == TOKEN_PARAM)
            .map(|(_, value)| value.into_owned())
    };
    let sent = match headers.get(CSRF_HEADER) {
        Some(value) => value.as_bytes().to_vec(),
        None if *method == Method::GET => in_query().ok_or(SessionError::CsrfMissing)?.into_bytes(),
        None => return Err(SessionError::CsrfMissing),
    };
    if bool::from(sent.as_slice().ct_eq(session.csrf_token.as_bytes())) {
        Ok(())
    } else {
        Err(SessionError::CsrfMismatch)
    }
}

/// The session id from the request's `Cookie` headers, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// Whether the page was fetched over https (directly, or through a proxy
/// that says so): the cookie is then marked `Secure`. Over plain http (a
/// daemon on loopback) a `Secure` cookie would never be sent back.
pub fn over_https(headers: &HeaderMap) -> bool {
    let said = |name: &str, prefix: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with(prefix))
    };
    said("x-forwarded-proto", "https") || said("origin", "https://")
}

/// `Set-Cookie` for session `id`, valid for `max_age`.
pub fn set_cookie(id: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{COOKIE}={id}; Max-Age={}; Path=/; HttpOnly; SameSite=Strict{secure}",
        max_age.whole_seconds().max(0)
    );
    // Hex ids and fixed attributes: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that makes the browser forget the session.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    set_cookie("", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn key() -> KeyId {
        "abcdefghijkl".parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn a_session_lives_until_its_lifetime_ends_or_it_is_closed() {
        let sessions = Sessions::default();
        let (id, session) = sessions.open(key(), now()).unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, session.csrf_token);
        assert_eq!(session.expires_at, now() + LIFETIME);
        assert_eq!(sessions.get(&id, now()).unwrap(), session);
        let later = now() + LIFETIME - Duration::SECOND;
        assert_eq!(sessions.get(&id, later).unwrap().key, key());
        assert_eq!(
            sessions.get(&id, now() + LIFETIME),
            Err(SessionError::Expired)
        );
        // An expired session is dropped, not kept.
        assert_eq!(
            sessions.get(&id, now()),
            Err(SessionError::Unknown),
            "an expired session is gone for good"
        );
        let (id, _) = sessions.open(key(), now()).unwrap();
        sessions.close(&id);
        assert_eq!(sessions.get(&id, now()), Err(SessionError::Unknown));
        assert!(sessions.is_empty());
    }

    #[test]
    fn ids_and_tokens_are_never_reused() {
        let sessions = Sessions::default();
        let (a, sa) = sessions.open(key(), now()).unwrap();
        let (b, sb) = sessions.open(key(), now()).unwrap();
        assert_ne!(a, b);
        assert_ne!(sa.csrf_token, sb.csrf_token);
        assert_eq!(sessions.len(), 2);
    }

    #[test]
    fn every_call_needs_the_sessions_own_token() {
        let sessions = Sessions::default();
        let (_, session) = sessions.open(key(), now()).unwrap();
        let (_, other) = sessions.open(key(), now()).unwrap();
        let all = [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ];
        for method in all {
            let check = |headers: &HeaderMap| check_token(&session, &method, headers, None);
            assert_eq!(check(&HeaderMap::new()), Err(SessionError::CsrfMissing));
            let wrong = headers(&[(CSRF_HEADER, &other.csrf_token)]);
            assert_eq!(check(&wrong), Err(SessionError::CsrfMismatch));
            let empty = headers(&[(CSRF_HEADER, "")]);
            assert_eq!(check(&empty), Err(SessionError::CsrfMismatch));
            let right = headers(&[(CSRF_HEADER, &session.csrf_token)]);
            assert_eq!(check(&right), Ok(()));
        }
    }

    #[test]
    fn a_get_may_carry_the_token_in_its_query_and_nothing_else_may() {
        let sessions = Sessions::default();
        let (_, session) = sessions.open(key(), now()).unwrap();
        let query = format!("a=1&csrf_token={}", session.csrf_token);
        let none = HeaderMap::new();
        assert_eq!(
            check_token(&session, &Method::GET, &none, Some(&query)),
            Ok(())
        );
        assert_eq!(
            check_token(&session, &Method::POST, &none, Some(&query)),
            Err(SessionError::CsrfMissing)
        );
        assert_eq!(
            check_token(&session, &Method::GET, &none, Some("csrf_token=nope")),
            Err(SessionError::CsrfMismatch)
        );
        assert_eq!(
            check_token(&session, &Method::GET, &none, Some("a=1")),
            Err(SessionError::CsrfMissing)
        );
    }

    #[test]
    fn csrf_failures_are_forbidden_and_dead_sessions_unauthenticated() {
        let kind = |e: SessionError| WarrenError::from(e).kind;
        assert_eq!(kind(SessionError::CsrfMissing), ErrorKind::PermissionDenied);
        assert_eq!(
            kind(SessionError::CsrfMismatch),
            ErrorKind::PermissionDenied
        );
        assert_eq!(kind(SessionError::Expired), ErrorKind::Unauthenticated);
        assert_eq!(kind(SessionError::Unknown), ErrorKind::Unauthenticated);
        assert_eq!(kind(SessionError::KeyUnusable), ErrorKind::Unauthenticated);
        assert_eq!(kind(SessionError::Full), ErrorKind::ResourceExhausted);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; warren_session=abc; b=2")]);
        assert_eq!(cookie(&h), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "warren_session=\"xyz\"")]);
        assert_eq!(cookie(&h), Some("xyz"));
        assert_eq!(cookie(&headers(&[("cookie", "warren_sessionx=1")])), None);
        assert_eq!(cookie(&headers(&[("cookie", "warren_session=")])), None);
        assert_eq!(cookie(&headers(&[("cookie", "garbage")])), None);
        assert_eq!(cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_only_over_https() {
        let plain = set_cookie("abc", LIFETIME, false);
        assert_eq!(
            plain.to_str().unwrap(),
            "warren_session=abc; Max-Age=43200; Path=/; HttpOnly; SameSite=Strict"
        );
        let tls = set_cookie("abc", LIFETIME, true);
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
        assert!(
            clear_cookie(false)
                .to_str()
                .unwrap()
                .starts_with("warren_session=; Max-Age=0;")
        );
        assert!(over_https(&headers(&[("x-forwarded-proto", "HTTPS")])));
        assert!(over_https(&headers(&[(
            "origin",
            "https://warren.example"
        )])));
        assert!(!over_https(&headers(&[("origin", "http://127.0.0.1:1")])));
        assert!(!over_https(&HeaderMap::new()));
    }

    #[test]
    fn a_full_table_drops_expired_sessions_before_refusing() {
        let sessions = Sessions::default();
        for _ in 0..MAX_SESSIONS {
            sessions.open(key(), now()).unwrap();
        }
        assert_eq!(sessions.open(key(), now()), Err(SessionError::Full));
        let later = now() + LIFETIME;
        assert!(sessions.open(key(), later).is_ok());
        assert_eq!(sessions.len(), 1);
    }
}
