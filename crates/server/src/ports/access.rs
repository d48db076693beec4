//! Who may reach a sandbox's port, and which of their credentials must not
//! reach the sandbox.
//!
//! A request is let in when the port is public (the sandbox's policy lists
//! it in `public_ports`), or it shows the sandbox's traffic token — as
//! `X-Warren-Traffic-Token`, E2B's `E2B-Traffic-Access-Token`, the
//! `warren_token` query parameter or the [`COOKIE`] cookie — or an API key
//! of the sandbox's team with `sandboxes:exec` (checked by the caller).
//! A public port ignores credentials altogether; on a protected port a
//! token that is shown is decisive (a wrong one is refused without looking
//! for a key). The cookie is only ever set to the sandbox's own token, after
//! the query's token matched it.

use axum::http::{HeaderMap, HeaderValue, header};
use subtle::ConstantTimeEq;
use warren_store::SandboxRecord;

/// The cookie that carries a traffic token, set from `warren_token`.
pub const COOKIE: &str = "warren_traffic_token";
const TOKEN_HEADERS: [&str; 2] = ["x-warren-traffic-token", "e2b-traffic-access-token"];

/// The ports of `rec` open to anyone who knows the URL: its network
/// policy's `public_ports`.
pub fn public_ports(rec: &SandboxRecord) -> &[u16] {
    &rec.network.public_ports
}

/// The credential a request shows for a sandbox port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// A traffic token; `from_query` when it came as `warren_token` (the
    /// answer then sets the cookie).
    Token {
        token: String,
        from_query: bool,
    },
    /// An API key (`Authorization: Bearer` or `X-API-Key`).
    ApiKey,
    Nothing,
}

/// The credential in the request: the query token first (the one a browser
/// was just given), then the headers, then the cookie, then an API key.
pub fn presented(headers: &HeaderMap, query_token: Option<&str>) -> Presented {
    if let Some(token) = query_token {
        return Presented::Token {
            token: token.to_owned(),
            from_query: true,
        };
    }
    let header = TOKEN_HEADERS
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()));
    if let Some(token) = header.or_else(|| cookie(headers, COOKIE)) {
        return Presented::Token {
            token: token.trim().to_owned(),
            from_query: false,
        };
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "));
    if bearer || headers.contains_key("x-api-key") {
        Presented::ApiKey
    } else {
        Presented::Nothing
    }
}

/// Whether `shown` is `expected`, in constant time.
pub fn token_matches(shown: &str, expected: &str) -> bool {
    bool::from(shown.as_bytes().ct_eq(expected.as_bytes()))
}

/// The value of cookie `name`, from any `Cookie` header.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// Takes Warren's credentials out of a request for a sandbox: the traffic
/// token headers and cookie, `X-API-Key`, and an `Authorization` that holds
/// a Warren key or token (an app's own `Authorization` passes).
pub fn strip_credentials(headers: &mut HeaderMap) {
    for name in TOKEN_HEADERS {
        headers.remove(name);
    }
    headers.remove("x-api-key");
    let warren_auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| {
            ["wrn_", "e2b_", "wst_"]
                .iter()
                .any(|p| t.trim().starts_with(p))
        });
    if warren_auth {
        headers.remove(header::AUTHORIZATION);
    }
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split_once('=').is_none_or(|(k, _)| k != COOKIE))
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, v);
    }
}

/// `Set-Cookie` for a token a browser gave as `warren_token`: sent back
/// only to this host (no `Domain`) and under `path`, unreadable by scripts.
pub fn set_cookie(token: &str, path: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path={path}; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn credentials_are_found_in_order() {
        let token = |t: &str, q| Presented::Token {
            token: t.into(),
            from_query: q,
        };
        let h = headers(&[
            ("x-warren-traffic-token", "hdr"),
            ("cookie", "a=1; warren_traffic_token=ck"),
            ("authorization", "Bearer wrn_x"),
        ]);
        assert_eq!(presented(&h, Some("q")), token("q", true));
        assert_eq!(presented(&h, None), token("hdr", false));
        let h = headers(&[("e2b-traffic-access-token", "e2b")]);
        assert_eq!(presented(&h, None), token("e2b", false));
        let h = headers(&[("cookie", "a=1"), ("cookie", "warren_traffic_token=ck")]);
        assert_eq!(presented(&h, None), token("ck", false));
        assert_eq!(
            presented(&headers(&[("x-api-key", "wrn_x")]), None),
            Presented::ApiKey
        );
        assert_eq!(
            presented(&headers(&[("authorization", "Basic dTpw")]), None),
            Presented::Nothing
        );
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
    }

    #[test]
    fn warren_credentials_do_not_reach_the_sandbox() {
        let mut h = headers(&[
            ("x-warren-traffic-token", "t"),
            ("e2b-traffic-access-token", "t"),
            ("x-api-key", "wrn_x"),
            ("authorization", "Bearer wrn_abc_def"),
            ("cookie", "a=1; warren_traffic_token=t"),
            ("cookie", "b=2"),
        ]);
        strip_credentials(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h.get("cookie").unwrap(), "a=1; b=2");

        let mut h = headers(&[
            ("authorization", "Bearer app-token"),
            ("cookie", "warren_traffic_token=t"),
        ]);
        strip_credentials(&mut h);
        assert_eq!(h.get("authorization").unwrap(), "Bearer app-token");
        assert!(h.get("cookie").is_none());
    }

    #[test]
    fn the_cookie_stays_on_its_host_and_path() {
        let v = set_cookie("tok", "/v1/sandboxes/x/ports/80").unwrap();
        assert_eq!(
            v,
            "warren_traffic_token=tok; Path=/v1/sandboxes/x/ports/80; HttpOnly; SameSite=Lax"
        );
        assert!(set_cookie("bad\ntoken", "/").is_none());
    }
}
