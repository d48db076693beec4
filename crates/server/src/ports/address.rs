//! Which sandbox port a request names, by Host or by path. Pure parsing.
//!
//! - Host: `{port}-{id}.{domain}`, optionally with the listener's `:port`;
//!   compared case-insensitively. Any other Host is the API's.
//! - Path: `/v1/sandboxes/{id}/ports/{port}[/{rest}]`; the sandbox gets
//!   `/{rest}` and the query.
//!
//! Either way the `warren_token` query parameter is taken out of the query
//! the sandbox sees (it is Warren's credential, not the app's).

use warren_core::WarrenError;

/// The query parameter that carries a traffic token (browsers).
pub const TOKEN_PARAM: &str = "warren_token";
const PATH_PREFIX: &str = "/v1/sandboxes/";

/// How the request named the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Host,
    Path,
}

/// A request for a sandbox's port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAddress {
    /// The sandbox id as given (checked by the caller).
    pub sandbox: String,
    pub port: u16,
    pub style: Style,
    /// Path and query for the sandbox, without [`TOKEN_PARAM`].
    pub upstream: String,
    /// The traffic token given as [`TOKEN_PARAM`], if any.
    pub query_token: Option<String>,
}

impl PortAddress {
    /// The path under which a cookie for this port is sent back.
    pub fn cookie_path(&self) -> String {
        match self.style {
            Style::Host => "/".to_owned(),
            Style::Path => format!("{PATH_PREFIX}{}/ports/{}", self.sandbox, self.port),
        }
    }
}

/// A normalized ports domain (`localhost` by default): lower case, without
/// leading or trailing dots, labels of letters, digits and `-`.
pub fn parse_domain(raw: &str) -> Result<String, WarrenError> {
    let domain = raw.trim().trim_matches('.').to_ascii_lowercase();
    let ok = !domain.is_empty()
        && domain.len() <= 200
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(domain)
    } else {
        Err(WarrenError::invalid(format!(
            "'{}' is not a ports domain: give a DNS name such as localhost or sandboxes.example.com",
            raw.chars().take(80).collect::<String>()
        )))
    }
}

/// The port a request names by its Host, or `None` when the Host is not
/// `{port}-{id}.{domain}` (the request is then the API's). A port number
/// outside 1–65535 is an error.
pub fn from_host(
    host: &str,
    path_and_query: &str,
    domain: &str,
) -> Option<Result<PortAddress, WarrenError>> {
    let name = strip_port(host)?.to_ascii_lowercase();
    let label = name.strip_suffix(domain)?.strip_suffix('.')?;
    if label.contains('.') {
        return None;
    }
    let (port, sandbox) = label.split_once('-')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (path, query) = split_query(path_and_query);
    Some(parse_port(port).map(|port| {
        let (query, query_token) = take_token(query);
        PortAddress {
            sandbox: sandbox.to_owned(),
            port,
            style: Style::Host,
            upstream: join(if path.is_empty() { "/" } else { path }, &query),
            query_token,
        }
    }))
}

/// The port a request names by its path, or `None` for any other path.
pub fn from_path(path_and_query: &str) -> Option<Result<PortAddress, WarrenError>> {
    let (path, query) = split_query(path_and_query);
    let rest = path.strip_prefix(PATH_PREFIX)?;
    let (sandbox, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("ports/")?;
    let (port, rest) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    Some(parse_port(port).map(|port| {
        let (query, query_token) = take_token(query);
        PortAddress {
            sandbox: sandbox.to_owned(),
            port,
            style: Style::Path,
            upstream: join(rest, &query),
            query_token,
        }
    }))
}

fn parse_port(raw: &str) -> Result<u16, WarrenError> {
    raw.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
        WarrenError::invalid(format!(
            "'{}' is not a port: ports are 1 to 65535",
            raw.chars().take(16).collect::<String>()
        ))
    })
}

/// `host[:port]` without the port; `None` for an IPv6 literal (never a
/// sandbox name).
fn strip_port(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        return None;
    }
    Some(match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    })
}

fn split_query(path_and_query: &str) -> (&str, Option<&str>) {
    match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    }
}

/// The query without [`TOKEN_PARAM`] (other parameters byte for byte), and
/// that parameter's decoded value.
fn take_token(query: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(query) = query else {
        return (None, None);
    };
    let mut token = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            if key != TOKEN_PARAM {
                return true;
            }
            token = url::form_urlencoded::parse(pair.as_bytes())
                .next()
                .map(|(_, v)| v.into_owned());
            false
        })
        .collect();
    (Some(kept.join("&")), token)
}

fn join(path: &str, query: &Option<String>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "abcdefghij0123456789";

    #[test]
    fn hosts_name_ports_case_insensitively() {
        let a = from_host(&format!("8080-{ID}.LocalHost:8700"), "/a?b=1", "localhost")
            .unwrap()
            .unwrap();
        assert_eq!((a.sandbox.as_str(), a.port), (ID, 8080));
        assert_eq!(a.upstream, "/a?b=1");
        assert_eq!(a.style, Style::Host);
        let a = from_host(
            &format!("3000-{}.Sbx.Example.com", ID.to_uppercase()),
            "",
            "sbx.example.com",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (a.sandbox.as_str(), a.port, a.upstream.as_str()),
            (ID, 3000, "/")
        );
    }

    #[test]
    fn other_hosts_are_the_apis() {
        for host in [
            "localhost:8700",
            "127.0.0.1:8700",
            "[::1]:8700",
            "api.localhost",
            "x-8080.localhost",
            "8080-id.other.localhost",
            "8080-id.notlocalhost",
            "8080.localhost",
        ] {
            assert!(from_host(host, "/", "localhost").is_none(), "{host}");
        }
        assert!(
            from_host(&format!("99999-{ID}.localhost"), "/", "localhost")
                .unwrap()
                .is_err()
        );
        assert!(
            from_host(&format!("0-{ID}.localhost"), "/", "localhost")
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn paths_name_ports_and_keep_the_rest() {
        let a = from_path(&format!("/v1/sandboxes/{ID}/ports/8080/x/y%20z?q=1&r"))
            .unwrap()
            .unwrap();
        assert_eq!((a.sandbox.as_str(), a.port), (ID, 8080));
        assert_eq!(a.upstream, "/x/y%20z?q=1&r");
        assert_eq!(a.cookie_path(), format!("/v1/sandboxes/{ID}/ports/8080"));
        let a = from_path(&format!("/v1/sandboxes/{ID}/ports/80"))
            .unwrap()
            .unwrap();
        assert_eq!(a.upstream, "/");
        assert!(
            from_path(&format!("/v1/sandboxes/{ID}/ports/http/"))
                .unwrap()
                .is_err()
        );
        assert!(from_path(&format!("/v1/sandboxes/{ID}/exec")).is_none());
        assert!(from_path("/v1/sandboxes").is_none());
    }

    #[test]
    fn the_token_parameter_is_taken_out() {
        let a = from_path(&format!(
            "/v1/sandboxes/{ID}/ports/80/?a=1&warren_token=t%2Bk&b=%26"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(a.query_token.as_deref(), Some("t+k"));
        assert_eq!(a.upstream, "/?a=1&b=%26");
        let a = from_host(
            &format!("80-{ID}.localhost"),
            "/p?warren_token=t",
            "localhost",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (a.upstream.as_str(), a.query_token.as_deref()),
            ("/p", Some("t"))
        );
    }

    #[test]
    fn domains_are_checked() {
        assert_eq!(parse_domain("Sbx.Example.com.").unwrap(), "sbx.example.com");
        assert_eq!(parse_domain("localhost").unwrap(), "localhost");
        for bad in ["", ".", "a..b", "a b", "*.x.com", "x/y"] {
            assert!(parse_domain(bad).is_err(), "{bad}");
        }
    }
}
