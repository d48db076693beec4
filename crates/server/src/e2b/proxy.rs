//! The sandbox proxy: a request carrying `E2b-Sandbox-Id` goes to that
//! sandbox, on the port in `E2b-Sandbox-Port` (49983, the default, is the
//! agent's envd; any other port reaches the sandbox's own servers).
//!
//! Bodies stream both ways, upstream connections are pooled with
//! TCP_NODELAY and upgrades are spliced: see [`crate::forward`].
//!
//! Who may reach a sandbox, decided before any byte is forwarded:
//! - `X-Access-Token` equal to the sandbox's envd access token. The token is
//!   per sandbox (derived from a daemon secret and the id) and handed out
//!   only by create/connect/info, which the permission table and
//!   `SandboxPath` already restrict to the sandbox's team. Holding it is
//!   therefore the right to address that one sandbox: it is compared in
//!   constant time against *the named sandbox's* token, so a token never
//!   opens another sandbox, and the agent checks it again.
//! - Or, for any port but envd's, `E2B-Traffic-Access-Token` equal to the
//!   sandbox's traffic token (also per sandbox, handed out with the access
//!   token): it opens the sandbox's own servers, never its agent.
//! - Or an API key (`X-API-KEY`/Bearer) of the sandbox's team with the
//!   `sandboxes:exec` scope; for the envd port the proxy then adds the
//!   access token itself.
//! - Or, for `/files` on the envd port, a `signature` query parameter: E2B's
//!   signed URLs are `sha256(path:op:user:token[:exp])`, checked by the
//!   agent (which alone can verify it). Signed URLs carry no header, so
//!   the sandbox is found by the signature: the daemon recomputes it for
//!   each live sandbox's token and takes the one that matches.
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

use super::error::E2bError;
use super::exec_audit;
use crate::auth::Authenticator;
use crate::credentials::ACCESS_TOKEN;
use crate::forward::{ForwardError, is_upgrade, strip_hop_by_hop};
use crate::service::Sandboxes;

/// The envd port inside every sandbox.
pub const ENVD_PORT: u16 = 49983;
const SANDBOX_ID: &str = "e2b-sandbox-id";
const SANDBOX_PORT: &str = "e2b-sandbox-port";
const TRAFFIC_TOKEN: &str = "e2b-traffic-access-token";

/// What the proxy needs.
#[derive(Clone)]
pub struct SandboxProxy {
    sandboxes: Arc<Sandboxes>,
    auth: Authenticator,
}

impl SandboxProxy {
    pub fn new(sandboxes: Arc<Sandboxes>, auth: Authenticator) -> Self {
        Self { sandboxes, auth }
    }
}

/// Where a request goes and how it is let in.
struct Target {
    id: SandboxId,
    port: u16,
    /// The access token to add (the caller showed an API key).
    add_token: Option<String>,
}

fn not_found(raw: &str) -> E2bError {
    E2bError(WarrenError::new(
        ErrorKind::Unavailable,
        format!(
            "sandbox '{}' not found or not running",
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
    if let Some(target) = proxy.signed_files_target(&req) {
        return proxy.forward(target, req).await;
    }
    // Everything outside the native API's `/v1` is E2B's: its errors are
    // spelled E2B's way, including those of authentication and routing.
    let native = req.uri().path().starts_with("/v1/");
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
        let agents = &self.sandboxes.agents;
        let presented = match (
            header_str(headers, ACCESS_TOKEN),
            header_str(headers, TRAFFIC_TOKEN),
        ) {
            (Some(shown), _) => Some((shown, "X-Access-Token", "access")),
            (None, Some(shown)) if port != ENVD_PORT => {
                Some((shown, "E2B-Traffic-Access-Token", "traffic"))
            }
            _ => None,
        };
        if let Some((shown, header, what)) = presented {
            let expected = id.as_ref().map(|id| match what {
                "access" => agents.token(id),
                _ => agents.traffic_token(id),
            });
            return match (id, expected) {
                (Some(id), Some(expected))
                    if bool::from(shown.as_bytes().ct_eq(expected.as_bytes())) =>
                {
                    Ok(Target {
                        id,
                        port,
                        add_token: None,
                    })
                }
                _ => Err(E2bError(WarrenError::new(
                    ErrorKind::Unauthenticated,
                    format!("{header} is not this sandbox's {what} token"),
                ))),
            };
        }
        // No token: an API key of the sandbox's team may address it.
        let caller = self.auth.authenticate(headers, None).await?;
        let id = id.ok_or_else(|| not_found(raw))?;
        let rec = self.sandboxes.store.get_sandbox(&id).await?;
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
    /// token produces the signature, if any.
    fn signed_files_target(&self, req: &Request) -> Option<Target> {
        if req.uri().path() != "/files" {
            return None;
        }
        let uri = req.uri();
        let signature = query_param(uri, "signature")?;
        let operation = match *req.method() {
            axum::http::Method::GET => "read",
            axum::http::Method::POST => "write",
            _ => return None,
        };
        let path = query_param(uri, "path").unwrap_or_default();
        let user = query_param(uri, "username").unwrap_or_default();
        let expiration = query_param(uri, "signature_expiration").and_then(|e| e.parse().ok());
        let agents = &self.sandboxes.agents;
        agents.live().into_iter().find_map(|(id, _)| {
            let token = agents.token(&id);
            let input = warren_envd::http_api::file_signature_input(
                &path, operation, &user, &token, expiration,
            );
            let expected = warren_envd::http_api::file_signature(&Sha256::digest(input.as_bytes()));
            bool::from(expected.as_bytes().ct_eq(signature.as_bytes())).then_some(Target {
                id,
                port: ENVD_PORT,
                add_token: None,
            })
        })
    }

    async fn forward(&self, target: Target, req: Request) -> Response {
        // No connection may reach a sandbox while a checkpoint is taken.
        let Some((ip, upstream)) = self.sandboxes.agents.upstream(&target.id).await else {
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
        match exec {
            Some(record) => exec_audit::watch(resp, record),
            None => resp,
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
