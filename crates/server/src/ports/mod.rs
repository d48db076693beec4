//! Exposed ports: a reverse proxy on the API listener into any port a
//! process listens on inside a sandbox (`docs/ports.md`).
//!
//! Addressing ([`address`]): by Host, `{port}-{id}.{domain}` (the domain is
//! `--ports-domain`, `localhost` by default, so `*.localhost` works in
//! browsers without DNS), or by path, `/v1/sandboxes/{id}/ports/{port}/…`
//! (the sandbox gets the rest of the path and the query). The proxy is the
//! outermost layer of the API: such requests never reach the router, its
//! body limits or its authentication, and they have no entry in the
//! permission table; this module decides access itself ([`access`]).
//!
//! Protocol and invariants:
//! - Port 49983 (the agent) is never reachable this way (403); ports are
//!   1–65535.
//! - Access: an unknown or killed sandbox answers 502 with E2B's body
//!   (`{"code":502,"message":"The sandbox was not found","sandboxId":…}`),
//!   whoever asks: a sandbox's id is in every URL of its ports, so whether
//!   it lives is no secret. A public port is open; otherwise a grant for
//!   the sandbox (its traffic token, [`crate::auth::grant`]) or an API key
//!   of its team with `sandboxes:exec`. No credentials: 403, as on E2B; a
//!   wrong token or key: 401; a key of another team or without the scope:
//!   403. Denied attempts are traced at debug level, never audited (port
//!   traffic is not a state change).
//! - A paused sandbox with `auto_resume` is resumed first (the resume path
//!   exec and files use); without it the answer is 409.
//! - Warren's credentials never reach the sandbox ([`crate::credentials`]),
//!   and it cannot set Warren's cookies. Under the path style, which shares
//!   the API's origin, the sandbox's own cookies are confined to its port's
//!   path (no `Domain`, `Path` under the prefix), so one sandbox's page
//!   cannot plant cookies that another sandbox's URLs would send, and its
//!   `Service-Worker-Allowed` is dropped, so its service workers stay
//!   under that path too (away from the dashboard at `/`). It sees
//!   `X-Forwarded-For/Proto/Host` (and `X-Forwarded-Prefix` for paths), the
//!   client's own `Host` (or the policy's `request_host`, with `${PORT}`
//!   replaced by the port), and its own headers.
//! - Nothing listening (or a server bound to 127.0.0.1 only): 502 with a
//!   body saying so. Bodies stream both ways and upgrades are spliced
//!   ([`crate::forward`]).

pub mod access;
pub mod address;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use warren_core::{ErrorKind, SandboxId, SandboxState, Scope, WarrenError};
use warren_store::GrantKind;

use self::access::Presented;
use self::address::{PortAddress, Style};
use crate::auth::{Authenticator, Grants};
use crate::error::AppError;
use crate::forward::{ForwardError, is_upgrade, strip_hop_by_hop};
use crate::service::Sandboxes;
use warren_envd::http_api::DEFAULT_PORT as ENVD_PORT;

pub use address::parse_domain;

/// The ports domain when none is configured.
pub const DEFAULT_DOMAIN: &str = "localhost";

/// What the port proxy needs.
#[derive(Clone)]
pub struct PortProxy {
    sandboxes: Arc<Sandboxes>,
    auth: Authenticator,
    grants: Grants,
    /// Normalized ([`parse_domain`]).
    domain: Arc<str>,
}

impl PortProxy {
    pub fn new(
        sandboxes: Arc<Sandboxes>,
        auth: Authenticator,
        grants: Grants,
        domain: &str,
    ) -> Self {
        Self {
            sandboxes,
            auth,
            grants,
            domain: domain.into(),
        }
    }

    /// The port a request names, by Host first, then by path.
    fn address(&self, req: &Request) -> Option<Result<PortAddress, WarrenError>> {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        host.and_then(|h| address::from_host(h, path, &self.domain))
            .or_else(|| address::from_path(path))
    }
}

/// Middleware over the API: requests for a sandbox port are proxied, the
/// rest go on.
pub async fn route(State(proxy): State<PortProxy>, req: Request, next: Next) -> Response {
    match proxy.address(&req) {
        None => next.run(req).await,
        Some(Err(e)) => AppError(e).into_response(),
        Some(Ok(addr)) => proxy.serve(addr, req).await,
    }
}

fn refused(kind: ErrorKind, message: impl Into<String>) -> Response {
    AppError(WarrenError::new(kind, message)).into_response()
}

/// 502 for a sandbox that is not there (unknown or killed), in E2B's
/// words and shape, which its SDKs and users read.
fn sandbox_not_found(sandbox: &str) -> Response {
    let body = serde_json::json!({
        "code": 502,
        "message": "The sandbox was not found",
        "sandboxId": sandbox.chars().take(64).collect::<String>(),
    });
    (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
}

/// 502: the sandbox is there but the port did not answer.
fn bad_gateway(message: String) -> Response {
    let mut resp = refused(ErrorKind::Unavailable, message);
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp
}

impl PortProxy {
    async fn serve(&self, addr: PortAddress, mut req: Request) -> Response {
        if addr.port == ENVD_PORT {
            return refused(
                ErrorKind::PermissionDenied,
                format!("port {ENVD_PORT} is the Warren agent's and is not exposed"),
            );
        }
        let (id, cookie) = match self.admit(&addr, req.headers()).await {
            Ok(admitted) => admitted,
            Err(e) if e.0.kind == ErrorKind::NotFound => return sandbox_not_found(&addr.sandbox),
            Err(e) => {
                if matches!(
                    e.0.kind,
                    ErrorKind::Unauthenticated | ErrorKind::PermissionDenied
                ) {
                    tracing::debug!(sandbox = %addr.sandbox.chars().take(64).collect::<String>(),
                        port = addr.port, reason = %e.0.message, "port proxy: access denied");
                }
                return e.into_response();
            }
        };
        let rec = match self.sandboxes.get_running(&id).await {
            Ok(rec) => rec,
            Err(e) => return AppError(e).into_response(),
        };
        let Some((ip, upstream)) = self.sandboxes.agents().upstream(&id).await else {
            return bad_gateway(format!("sandbox {id} is not reachable right now"));
        };
        let target = SocketAddr::new(ip, addr.port);
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        prepare(&addr, req.headers_mut(), peer);
        if let Some(host) = rec.network.request_host_for(addr.port)
            && let Ok(host) = HeaderValue::try_from(host)
        {
            req.headers_mut().insert(header::HOST, host);
        }
        match addr.upstream.parse() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return refused(ErrorKind::InvalidArgument, "malformed request path"),
        }
        let mut resp = match upstream.send(target, req).await {
            Ok(resp) => resp,
            Err(ForwardError::BadPath) => {
                return refused(ErrorKind::InvalidArgument, "malformed request path");
            }
            Err(ForwardError::Connect(e)) => {
                tracing::debug!(sandbox = %id, port = addr.port, error = %e, "port proxy: cannot connect");
                return bad_gateway(format!(
                    "nothing answers on port {} in sandbox {id}: is a server listening there, on 0.0.0.0 (not 127.0.0.1)?",
                    addr.port
                ));
            }
            Err(e) => {
                tracing::debug!(sandbox = %id, port = addr.port, error = %e, "port proxy: upstream failed");
                return bad_gateway(format!(
                    "the server on port {} in sandbox {id} closed the connection without an answer",
                    addr.port
                ));
            }
        };
        if addr.style == Style::Path {
            access::confine_cookies(resp.headers_mut(), &addr.cookie_path());
            access::confine_service_workers(resp.headers_mut());
        }
        if let Some(cookie) = cookie.and_then(|t| access::set_cookie(&t, &addr.cookie_path())) {
            resp.headers_mut().append(header::SET_COOKIE, cookie);
        }
        resp
    }

    /// The sandbox, if the request may reach `addr`'s port, and the token
    /// to set as a cookie when it was let in by a `warren_token` query
    /// parameter (a public port never hands out a token).
    async fn admit(
        &self,
        addr: &PortAddress,
        headers: &HeaderMap,
    ) -> Result<(SandboxId, Option<String>), AppError> {
        let denied = |m: String| AppError(WarrenError::new(ErrorKind::PermissionDenied, m));
        let rec = match addr.sandbox.parse::<SandboxId>() {
            Ok(id) => self
                .sandboxes
                .lookup(&id)
                .await?
                .filter(|r| r.state != SandboxState::Killed),
            Err(_) => None,
        };
        let Some(rec) = rec else {
            return Err(AppError(WarrenError::not_found(
                "the sandbox was not found",
            )));
        };
        if access::is_public(&rec, addr.port) {
            return Ok((rec.id, None));
        }
        match access::presented(headers, addr.query_token.as_deref()) {
            Presented::Token { token, from_query } => {
                let kinds = [GrantKind::Traffic, GrantKind::Envd];
                if let Err(e) = self.grants.check(&token, Some(&rec.id), &kinds).await {
                    return Err(AppError(e.into()));
                }
                Ok((rec.id, from_query.then_some(token)))
            }
            Presented::ApiKey => {
                let caller = self.auth.authenticate(headers, None).await?;
                if rec.team != caller.team {
                    return Err(denied(format!(
                        "port {} of sandbox {} is not public, and this key's team does not own the sandbox",
                        addr.port, rec.id
                    )));
                }
                if !caller.permissions.contains(Scope::SandboxesExec) {
                    return Err(AppError(WarrenError::new(
                        ErrorKind::PermissionDenied,
                        format!(
                            "this key lacks the scope {} needed to reach a sandbox's ports",
                            Scope::SandboxesExec
                        ),
                    )));
                }
                Ok((rec.id, None))
            }
            Presented::Nothing => Err(denied(
                "this port is not public: send the sandbox's traffic token (X-Warren-Traffic-Token, or ?warren_token= in a browser) or an API key with sandboxes:exec".into(),
            )),
        }
    }
}

/// The request's headers as the sandbox sees them.
fn prepare(addr: &PortAddress, headers: &mut HeaderMap, peer: Option<std::net::IpAddr>) {
    if !is_upgrade(headers) {
        strip_hop_by_hop(headers);
    }
    if let Some(peer) = peer {
        let chain = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {peer}"),
            None => peer.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&chain) {
            headers.insert("x-forwarded-for", v);
        }
    }
    if !headers.contains_key("x-forwarded-proto") {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert("x-forwarded-host", host);
    }
    if addr.style == Style::Path
        && let Ok(v) = HeaderValue::from_str(&addr.cookie_path())
    {
        headers.insert("x-forwarded-prefix", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_sees_forwarding_headers_and_no_credentials() {
        let addr = address::from_path("/v1/sandboxes/abcdefghij0123456789/ports/80/x")
            .unwrap()
            .unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8700"));
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        prepare(&addr, &mut h, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "127.0.0.1:8700");
        assert_eq!(
            h["x-forwarded-prefix"],
            "/v1/sandboxes/abcdefghij0123456789/ports/80"
        );
        assert!(h.get("connection").is_none());

        // An upgrade keeps its hop-by-hop headers.
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        prepare(&addr, &mut h, None);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "Upgrade");
    }
}
