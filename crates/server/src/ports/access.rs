//! Who may reach a sandbox's port, and the cookies it may set.
//!
//! A request is let in when the port is public (the sandbox's policy lists
//! it in `public_ports` or sets `all_ports_public`), or it shows the
//! sandbox's traffic token — as `X-Warren-Traffic-Token`, E2B's
//! `E2B-Traffic-Access-Token`, the `warren_token` query parameter or the
//! [`COOKIE`] cookie — or an API key of the sandbox's team with
//! `sandboxes:exec` (checked by the caller).
//! A public port ignores credentials altogether; on a protected port a
//! token that is shown is decisive (a wrong one is refused without looking
//! for a key). The cookie is only ever set to the sandbox's own token, after
//! the query's token matched it.

use axum::http::{HeaderMap, HeaderValue, header};
use warren_store::SandboxRecord;

/// The cookie that carries a traffic token, set from `warren_token`.
pub const COOKIE: &str = "warren_traffic_token";
const TOKEN_HEADERS: [&str; 2] = ["x-warren-traffic-token", "e2b-traffic-access-token"];

/// Whether `port` of `rec` is open to anyone who knows the URL: its
/// network policy lists it in `public_ports` or makes every port public.
pub fn is_public(rec: &SandboxRecord, port: u16) -> bool {
    rec.network.is_public(port)
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

/// Confines the sandbox's own cookies to `prefix` (a path-style port's
/// path): each `Set-Cookie` loses its `Domain` and gets `Path` =
/// `prefix` + its own path. Path-style URLs share the API's origin, and a
/// cookie set for `/` there would go with every other sandbox's requests.
pub fn confine_cookies(headers: &mut HeaderMap, prefix: &str) {
    let confined: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| HeaderValue::from_str(&confine_cookie(v, prefix)).ok())
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in confined {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Drops `Service-Worker-Allowed` from a path-style answer: a service
/// worker the sandbox's page registers then controls at most the URLs
/// under its script's own path, inside the port's prefix, and never the
/// dashboard's or another sandbox's pages on the API's origin.
pub fn confine_service_workers(headers: &mut HeaderMap) {
    headers.remove("service-worker-allowed");
}

fn confine_cookie(set_cookie: &str, prefix: &str) -> String {
    let mut parts = set_cookie.split(';').map(str::trim);
    let mut out = parts.next().unwrap_or_default().to_owned();
    let mut path = "/";
    for attr in parts {
        let name = attr.split_once('=').map_or(attr, |(k, _)| k).trim();
        if name.eq_ignore_ascii_case("domain") {
            continue;
        }
        if name.eq_ignore_ascii_case("path") {
            path = attr.split_once('=').map_or("/", |(_, v)| v.trim());
            continue;
        }
        out.push_str("; ");
        out.push_str(attr);
    }
    let path = path.strip_prefix('/').unwrap_or("");
    out.push_str(&format!("; Path={}/{path}", prefix.trim_end_matches('/')));
    out
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
    use crate::credentials::headers;

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
    }

    #[test]
    fn path_style_cookies_stay_under_their_port() {
        let mut h = headers(&[
            ("set-cookie", "sid=1; Path=/; Domain=127.0.0.1; HttpOnly"),
            ("set-cookie", "theme=dark"),
            ("set-cookie", "x=2; path=/app"),
        ]);
        confine_cookies(&mut h, "/v1/sandboxes/s/ports/80");
        let got: Vec<_> = h.get_all("set-cookie").iter().collect();
        assert_eq!(
            got,
            [
                "sid=1; HttpOnly; Path=/v1/sandboxes/s/ports/80/",
                "theme=dark; Path=/v1/sandboxes/s/ports/80/",
                "x=2; Path=/v1/sandboxes/s/ports/80/app",
            ]
        );
    }

    #[test]
    fn path_style_service_workers_cannot_widen_their_scope() {
        let mut h = headers(&[
            ("service-worker-allowed", "/"),
            ("content-type", "text/javascript"),
        ]);
        confine_service_workers(&mut h);
        assert!(h.get("service-worker-allowed").is_none());
        assert_eq!(h["content-type"], "text/javascript");
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
