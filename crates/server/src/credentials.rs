//! Warren's credentials at the edge of a sandbox: what is taken out of a
//! request before it is forwarded into a sandbox, and out of the answer
//! before it reaches the client.
//!
//! Invariants, for every path into a sandbox (the E2B proxy, host- and
//! path-style port URLs, WebSocket upgrades; all go through
//! [`crate::forward::Upstream::send`], which applies them):
//! - API keys (`X-API-Key`, and a Bearer `Authorization` holding a Warren
//!   key or sandbox token), traffic tokens (`X-Warren-Traffic-Token`,
//!   `E2B-Traffic-Access-Token`) and Warren's cookies (every cookie named
//!   `warren_…`) never reach a sandbox. An app's own `Authorization` and
//!   cookies pass.
//! - The agent's access token (`X-Access-Token`) reaches the agent's port
//!   and no other: a server on an app port, which may run as any user,
//!   must never learn the credential that runs commands as root.
//! - A sandbox cannot set Warren's cookies: `Set-Cookie` answers naming a
//!   `warren_…` cookie are dropped.

use axum::http::{HeaderMap, HeaderValue, header};

/// Every cookie Warren sets is named with this prefix.
pub const COOKIE_PREFIX: &str = "warren_";
/// The agent's access token (E2B's envd header).
pub const ACCESS_TOKEN: &str = "x-access-token";
/// Headers that carry a Warren credential and nothing for the sandbox.
const CREDENTIAL_HEADERS: [&str; 3] = [
    "x-api-key",
    "x-warren-traffic-token",
    "e2b-traffic-access-token",
];
/// Prefixes of Warren's API keys (native and E2B spelling) and sandbox tokens.
const BEARER_PREFIXES: [&str; 3] = ["wrn_", "e2b_", "wst_"];

/// Takes Warren's credentials out of a request bound for a sandbox; the
/// access token stays only when the request goes to the agent.
pub fn strip_request(headers: &mut HeaderMap, to_agent: bool) {
    for name in CREDENTIAL_HEADERS {
        headers.remove(name);
    }
    if !to_agent {
        headers.remove(ACCESS_TOKEN);
    }
    let warren_bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("Bearer "))
        .any(|t| BEARER_PREFIXES.iter().any(|p| t.trim().starts_with(p)));
    if warren_bearer {
        headers.remove(header::AUTHORIZATION);
    }
    let kept: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !is_warren_cookie(pair))
        .collect();
    let kept = kept.join("; ");
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept)
    {
        headers.insert(header::COOKIE, v);
    }
}

/// Drops the answer's `Set-Cookie` headers that would set a Warren cookie.
pub fn strip_response(headers: &mut HeaderMap) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| !v.to_str().map_or(true, is_warren_cookie))
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in kept {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Whether a `name=value…` cookie string names a Warren cookie. Browsers
/// keep cookie names' case, but servers behind them may not: the prefix is
/// matched without it.
fn is_warren_cookie(pair: &str) -> bool {
    let name = pair.split_once('=').map_or(pair, |(k, _)| k).trim();
    name.get(..COOKIE_PREFIX.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(COOKIE_PREFIX))
}

/// A header map of `pairs`, for tests.
#[cfg(test)]
pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warren_credentials_do_not_reach_an_app_port() {
        let mut h = headers(&[
            ("x-warren-traffic-token", "t"),
            ("e2b-traffic-access-token", "t"),
            ("x-api-key", "wrn_x"),
            ("x-access-token", "envd"),
            ("authorization", "Bearer wrn_abc_def"),
            ("cookie", "a=1; warren_traffic_token=t; WARREN_session=s"),
            ("cookie", "b=2"),
        ]);
        strip_request(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h.get("cookie").unwrap(), "a=1; b=2");

        let mut h = headers(&[
            ("authorization", "Bearer app-token"),
            ("cookie", "warren_traffic_token=t"),
        ]);
        strip_request(&mut h, false);
        assert_eq!(h.get("authorization").unwrap(), "Bearer app-token");
        assert!(h.get("cookie").is_none());
    }

    #[test]
    fn only_the_agent_gets_the_access_token() {
        let mut h = headers(&[
            ("x-access-token", "envd"),
            ("x-api-key", "e2b_00"),
            ("authorization", "Basic dXNlcjo="),
        ]);
        strip_request(&mut h, true);
        assert_eq!(h.get("x-access-token").unwrap(), "envd");
        assert_eq!(h.get("authorization").unwrap(), "Basic dXNlcjo=");
        assert!(h.get("x-api-key").is_none());
    }

    #[test]
    fn a_sandbox_cannot_set_warren_cookies() {
        let mut h = headers(&[
            ("set-cookie", "warren_traffic_token=planted; Path=/"),
            ("set-cookie", "Warren_Session=x"),
            ("set-cookie", "app=1; Path=/"),
        ]);
        strip_response(&mut h);
        let left: Vec<_> = h.get_all("set-cookie").iter().collect();
        assert_eq!(left, ["app=1; Path=/"]);
    }
}
