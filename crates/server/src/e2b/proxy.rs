//! The sandbox proxy: a request carrying `E2b-Sandbox-Id` goes to that
//! sandbox, on the port in `E2b-Sandbox-Port` (49983, the default, is the
//! agent's envd; any other port reaches the sandbox's own servers).
//!
//! Bodies stream both ways, upstream connections are pooled with
//! TCP_NODELAY and upgrades are spliced: see [`crate::forward`].
//!
//! Who may reach a sandbox, decided before any byte is forwarded:
//! - `X-Access-Token` holding an envd grant ([`crate::auth::grant`]) for
//!   the named sandbox: it opens the agent and every other port. Grants
//!   are handed out by create/connect/info to keys with `sandboxes:exec`.
//! - Or, for any port but envd's, `E2B-Traffic-Access-Token` holding a
//!   grant (traffic or envd) for the named sandbox.
//! - Or an API key (`X-API-KEY`/Bearer) of the sandbox's team with the
//!   `sandboxes:exec` scope.
//! - Or, for `/files` on the envd port, a `signature` query parameter:
//!   E2B's signed URLs are `sha256(path:op:user:token[:exp])`, made by the
//!   client with its envd grant. Signed URLs carry no header, so the
//!   sandbox is found by the signature: the daemon recomputes it for each
//!   live envd grant and takes the one that matches.
//!
//! The agent never sees a grant: a request for the envd port carries the
//! agent's own token, put in by the proxy, and a signed URL is signed
//! again with it (the agent checks the signature and its expiry).
//!
//! The credential is judged first: anything else is 401, whatever the id.
//! Then an unknown, malformed, dead or other team's sandbox is 502
//! "sandbox not found", as E2B's edge answers (the SDK's `is_running`
//! reads 502 as "not running"). Warren's credentials never reach the
//! sandbox, and the access token reaches only the agent's port
//! ([`crate::credentials`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use warren_core::{ErrorKind, SandboxId, Scope, WarrenError};
use warren_envd::http_api::DEFAULT_PORT as ENVD_PORT;
use warren_store::GrantKind;

use super::error::E2bError;
use super::{cut_streams, exec_audit};
use crate::auth::grant::GrantError;
use crate::auth::{Authenticator, Grants};
use crate::credentials::ACCESS_TOKEN;
use crate::forward::{ForwardError, is_upgrade, strip_hop_by_hop};
use crate::service::Sandboxes;

const SANDBOX_ID: &str = "e2b-sandbox-id";
const SANDBOX_PORT: &str = "e2b-sandbox-port";
const TRAFFIC_TOKEN: &str = "e2b-traffic-access-token";

/// What the proxy needs.
#[derive(Clone)]
pub struct SandboxProxy {
    sandboxes: Arc<Sandboxes>,
    auth: Authenticator,
    grants: Grants,
}

impl SandboxProxy {
    pub fn new(sandboxes: Arc<Sandboxes>, auth: Authenticator, grants: Grants) -> Self {
        Self {
            sandboxes,
            auth,
            grants,
        }
    }
}

/// Where a request goes and how it is let in.
struct Target {
    id: SandboxId,
    port: u16,
    /// The agent's token, for a request to the agent's port.
    add_token: Option<String>,
}

/// The SDKs tell a sandbox that is gone by E2B's wording, "was not found",
/// in this answer: with it a command cut off by a kill ends as "killed or
/// reached its end of life", not as a lost connection.
fn not_found(raw: &str) -> E2bError {
    E2bError(WarrenError::new(
        ErrorKind::Unavailable,
        format!(
            "the sandbox '{}' was not found or is not running",
            raw.chars().take(64).collect::<String>()
        ),
    ))
}

/// 502 for a sandbox that cannot be reached (E2B's edge answer).
fn bad_gateway(e: E2bError) -> Response {
    let mut resp = e.into_response();
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
        *resp.status_mut() = StatusCode::BAD_GATEWAY;
    }
    resp
}

/// Middleware over the whole API: requests for a sandbox are proxied, the
/// rest go on to the routes.
pub async fn route_by_header(
    State(proxy): State<SandboxProxy>,
    req: Request,
    next: Next,
) -> Response {
    if req.headers().contains_key(SANDBOX_ID) {
        return match proxy.target(req.headers()).await {
            Ok(target) => proxy.forward(target, req).await,
            Err(e) => bad_gateway(e),
        };
    }
    let mut req = req;
    let (method, uri) = (req.method().clone(), req.uri().clone());
    if let Some((target, uri)) = proxy.signed_files_target(&method, &uri).await {
        *req.uri_mut() = uri;
        return proxy.forward(target, req).await;
    }
    // Everything outside the native API's `/v1` (and its `/metrics`) is
    // E2B's: its errors are spelled E2B's way, including those of
    // authentication and routing.
    let path = req.uri().path();
    let native = path.starts_with("/v1/") || path == "/metrics";
    let resp = next.run(req).await;
    if native {
        resp
    } else {
        super::error::respell(resp).await
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `uri` with the query parameter `name` set to `value` (the others kept
/// in order).
fn with_query_param(uri: &Uri, name: &str, value: &str) -> Option<Uri> {
    let pairs = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes());
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(&k, if k == name { value } else { &v });
    }
    format!("{}?{}", uri.path(), query.finish()).parse().ok()
}

impl SandboxProxy {
    /// Who may reach which sandbox. The credential is judged before the
    /// sandbox is looked up, so an unknown, malformed, dead or other team's
    /// id answers alike, and only once the caller has shown a credential.
    async fn target(&self, headers: &HeaderMap) -> Result<Target, E2bError> {
        let raw = header_str(headers, SANDBOX_ID).unwrap_or_default();
        let port = match header_str(headers, SANDBOX_PORT) {
            None => ENVD_PORT,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    E2bError(WarrenError::invalid(format!(
                        "E2b-Sandbox-Port must be a port number, got '{}'",
                        p.chars().take(16).collect::<String>()
                    )))
                })?,
        };
        let id = raw.trim().parse::<SandboxId>().ok();
        let agents = self.sandboxes.agents();
        let presented = match (
            header_str(headers, ACCESS_TOKEN),
            header_str(headers, TRAFFIC_TOKEN),
        ) {
            (Some(shown), _) => Some((shown, "X-Access-Token")),
            (None, Some(shown)) if port != ENVD_PORT => Some((shown, "E2B-Traffic-Access-Token")),
            _ => None,
        };
        if let Some((shown, header)) = presented {
            let kinds: &[GrantKind] = match port {
                ENVD_PORT => &[GrantKind::Envd],
                _ => &[GrantKind::Envd, GrantKind::Traffic],
            };
            let refused = |why: String| {
                E2bError(WarrenError::new(
                    ErrorKind::Unauthenticated,
                    format!("{header}: {why}"),
                ))
            };
            let grant = match self.grants.check(shown, id.as_ref(), kinds).await {
                Ok(grant) => grant,
                Err(e @ GrantError::Store(_)) => return Err(E2bError(e.into())),
                Err(e) => return Err(refused(e.to_string())),
            };
            let id = grant.sandbox;
            return Ok(Target {
                add_token: (port == ENVD_PORT).then(|| agents.token(&id)),
                id,
                port,
            });
        }
        // No token: an API key of the sandbox's team may address it.
        let caller = self.auth.authenticate(headers, None).await?;
        let id = id.ok_or_else(|| not_found(raw))?;
        let rec = self.sandboxes.lookup(&id).await?;
        if rec.is_none_or(|r| r.team != caller.team || r.state.is_terminal()) {
            return Err(not_found(raw));
        }
        if !caller.permissions.contains(Scope::SandboxesExec) {
            return Err(E2bError(WarrenError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "this key lacks the scope {} needed to reach a sandbox",
                    Scope::SandboxesExec
                ),
            )));
        }
        // The agent's token is added for the agent only; an app port never
        // sees it (and `Upstream::send` would take it out again).
        Ok(Target {
            add_token: (port == ENVD_PORT).then(|| agents.token(&id)),
            id,
            port,
        })
    }

    /// A signed `/files` URL (no sandbox header): the live sandbox whose
    /// envd grant produces the signature, if any, and the URL signed again
    /// with the agent's token.
    async fn signed_files_target(
        &self,
        method: &axum::http::Method,
        uri: &Uri,
    ) -> Option<(Target, Uri)> {
        if uri.path() != "/files" {
            return None;
        }
        let signature = query_param(uri, "signature")?;
        let operation = match *method {
            axum::http::Method::GET => "read",
            axum::http::Method::POST => "write",
            _ => return None,
        };
        let path = query_param(uri, "path").unwrap_or_default();
        let user = query_param(uri, "username").unwrap_or_default();
        let expiration = query_param(uri, "signature_expiration").and_then(|e| e.parse().ok());
        let sign = |token: &str| {
            let input = warren_envd::http_api::file_signature_input(
                &path, operation, &user, token, expiration,
            );
            warren_envd::http_api::file_signature(&Sha256::digest(input.as_bytes()))
        };
        let grants = match self.grants.live_envd().await {
            Ok(grants) => grants,
            Err(e) => {
                tracing::warn!(error = %e.message, "signed URL: cannot read the grants");
                return None;
            }
        };
        let id = grants.into_iter().find_map(|(id, grant)| {
            bool::from(sign(&grant).as_bytes().ct_eq(signature.as_bytes())).then_some(id)
        })?;
        let resigned =
            with_query_param(uri, "signature", &sign(&self.sandboxes.agents().token(&id)))?;
        Some((
            Target {
                id,
                port: ENVD_PORT,
                add_token: None,
            },
            resigned,
        ))
    }

    async fn forward(&self, target: Target, req: Request) -> Response {
        // No connection may reach a sandbox while a checkpoint is taken.
        // A paused sandbox with `autoResume` wakes for its traffic.
        let agents = self.sandboxes.agents();
        let mut reachable = agents.upstream(&target.id).await;
        if reachable.is_none() && self.sandboxes.resume_for_traffic(&target.id).await {
            reachable = agents.upstream(&target.id).await;
        }
        let Some((ip, upstream)) = reachable else {
            return bad_gateway(not_found(target.id.as_str()));
        };
        let addr = SocketAddr::new(ip, target.port);
        let (mut req, exec) =
            if target.port == ENVD_PORT && req.uri().path() == exec_audit::START_PATH {
                match exec_audit::read_start(&self.sandboxes, &target.id, req).await {
                    Ok(read) => read,
                    Err(resp) => return resp,
                }
            } else {
                (req, None)
            };
        let upgrade = is_upgrade(req.headers());
        clean_headers(req.headers_mut(), upgrade, addr);
        if let Some(token) = &target.add_token
            && let Ok(v) = HeaderValue::from_str(token)
        {
            req.headers_mut().insert(ACCESS_TOKEN, v);
        }
        let resp = match upstream.send(addr, req).await {
            Ok(resp) => resp,
            Err(ForwardError::BadPath) => {
                return E2bError(WarrenError::invalid("malformed request path")).into_response();
            }
            Err(e) => {
                tracing::debug!(sandbox = %target.id, error = %e, "sandbox proxy: upstream failed");
                return bad_gateway(E2bError(WarrenError::unavailable(format!(
                    "sandbox {} did not answer on port {}",
                    target.id, target.port
                ))));
            }
        };
        let resp = match exec {
            Some(record) => exec_audit::watch(resp, record),
            None => resp,
        };
        if target.port == ENVD_PORT {
            cut_streams::explain(resp, self.sandboxes.clone(), target.id)
        } else {
            resp
        }
    }
}

/// Prepares the request's headers for the sandbox: hop-by-hop headers go
/// (kept for an upgrade), the routing headers go, the host is the
/// sandbox's. Warren's credentials are taken out by `Upstream::send`.
fn clean_headers(headers: &mut HeaderMap, upgrade: bool, addr: SocketAddr) {
    if !upgrade {
        strip_hop_by_hop(headers);
    }
    headers.remove(SANDBOX_ID);
    headers.remove(SANDBOX_PORT);
    if let Ok(host) = HeaderValue::from_str(&addr.to_string()) {
        headers.insert(header::HOST, host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_and_hop_headers_stay_out() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, x-drop"));
        h.insert("x-drop", HeaderValue::from_static("1"));
        h.insert(SANDBOX_ID, HeaderValue::from_static("sbx"));
        h.insert(SANDBOX_PORT, HeaderValue::from_static("8000"));
        h.insert("authorization", HeaderValue::from_static("Basic dXNlcjo="));
        let addr: SocketAddr = "10.0.0.2:49983".parse().unwrap();
        clean_headers(&mut h, false, addr);
        assert!(h.get("x-drop").is_none());
        assert!(h.get(SANDBOX_ID).is_none() && h.get(SANDBOX_PORT).is_none());
        assert_eq!(h.get("host").unwrap(), "10.0.0.2:49983");
        // envd's user header is Basic and must reach the agent.
        assert_eq!(h.get("authorization").unwrap(), "Basic dXNlcjo=");
    }
}
