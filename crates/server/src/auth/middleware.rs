//! Authentication (who is calling) and authorization (may they call this
//! route) as two middleware layers over the protected routes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use time::OffsetDateTime;
use warren_core::authz::key_permissions;
use warren_core::{ErrorKind, KeyId, Permissions, Role, SandboxId, TeamId, UserId, WarrenError};
use warren_runtime::Origin;
use warren_store::{KeyRecord, Store};

use super::keys::{ApiKey, Pepper};
use super::policy::Rule;
use super::token::{TokenIssuer, is_sandbox_token};
use crate::clock::Clock;
use crate::dashboard::session::{self, Sessions};
use crate::error::AppError;

/// Who is calling; inserted into request extensions by [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub team: TeamId,
    /// The user acting (for a sandbox token: the sandbox's dispatcher).
    pub user: UserId,
    /// The key presented, or the key that dispatched the calling sandbox.
    pub key_id: KeyId,
    pub role: Role,
    /// What the caller may do: the key's role and scopes, and for a sandbox
    /// token also the token's own limit.
    pub permissions: Permissions,
    /// The sandbox acting, when the caller presented a sandbox token.
    pub sandbox: Option<SandboxId>,
}

impl Caller {
    /// The actor chain, outermost first: `user:<id>`, then `sandbox:<id>`
    /// when a sandbox acts for its user.
    pub fn actor_chain(&self) -> Vec<String> {
        let mut chain = vec![format!("user:{}", self.user)];
        if let Some(s) = &self.sandbox {
            chain.push(format!("sandbox:{s}"));
        }
        chain
    }
}

/// Which credentials a listener takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// API keys (the main API listener).
    ApiKeys,
    /// Sandbox tokens from their own sandbox (the sandbox listener).
    SandboxTokens,
}

/// Where live sandboxes' traffic comes from: a sandbox token is accepted
/// only with the proof, given by the sandbox's runtime, that the connection
/// comes from its own sandbox ([`Origin`]; with gVisor, the source address
/// of the sandbox's network attachment). The token alone is not enough.
pub trait SandboxSources: Send + Sync {
    /// What proves a connection comes from `id`, while it is live.
    fn origin(&self, id: &SandboxId) -> Option<Origin>;
}

/// What the authenticator needs.
#[derive(Clone)]
pub struct Authenticator {
    pub store: Arc<dyn Store>,
    pub pepper: Pepper,
    pub tokens: TokenIssuer,
    /// Where each live sandbox's traffic comes from.
    pub sources: Arc<dyn SandboxSources>,
    pub accepts: Credentials,
    /// Decides whether keys and tokens have expired.
    pub clock: Clock,
    /// Dashboard sessions, taken in place of a key on the API listener.
    pub sessions: Sessions,
}

fn unauthenticated(message: impl Into<String>) -> AppError {
    AppError(WarrenError::new(ErrorKind::Unauthenticated, message))
}

/// The credential from `Authorization: Bearer …` or `X-API-Key: …`.
fn presented_credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A key that may act now: not revoked, not expired.
pub(super) fn usable(key: &KeyRecord, now: OffsetDateTime) -> Result<(), &'static str> {
    if key.revoked_at.is_some_and(|t| t <= now) {
        return Err("revoked");
    }
    if key.expires_at.is_some_and(|t| t <= now) {
        return Err("expired");
    }
    Ok(())
}

impl Authenticator {
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Caller, AppError> {
        let text = presented_credential(headers).ok_or_else(|| {
            unauthenticated("missing API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`")
        })?;
        match (self.accepts, is_sandbox_token(text)) {
            (Credentials::ApiKeys, false) => self.api_key(text).await,
            (Credentials::SandboxTokens, true) => self.sandbox_token(text, peer).await,
            (Credentials::ApiKeys, true) => Err(unauthenticated(
                "sandbox tokens are accepted only from inside their sandbox, at WARREN_API_URL",
            )),
            (Credentials::SandboxTokens, false) => Err(unauthenticated(
                "this listener takes sandbox tokens only; API keys go to the main API address",
            )),
        }
    }

    /// The caller behind an API key presented in a body (a dashboard
    /// login), refusing sandbox tokens.
    pub async fn caller_for_key(&self, text: &str) -> Result<Caller, AppError> {
        if is_sandbox_token(text) {
            return Err(unauthenticated(
                "a sandbox token cannot open a dashboard session",
            ));
        }
        self.api_key(text).await
    }

    /// The caller behind dashboard session `id` (the cookie), for a
    /// request with `method`, `headers` and the query string `query`: the
    /// session's key as it is now, if the session lives, the key is usable
    /// and the request carries the session's token.
    pub async fn session_caller(
        &self,
        id: &str,
        method: &axum::http::Method,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Caller, AppError> {
        let now = self.clock.now();
        let open = self.sessions.get(id, now).map_err(WarrenError::from)?;
        let key = match self.store.get_key(&open.key).await? {
            Some(key) if usable(&key, now).is_ok() => key,
            _ => {
                self.sessions.close(id);
                return Err(WarrenError::from(session::SessionError::KeyUnusable).into());
            }
        };
        session::check_token(&open, method, headers, query).map_err(WarrenError::from)?;
        self.caller_for(key, None).await
    }

    async fn api_key(&self, text: &str) -> Result<Caller, AppError> {
        let decoded = ApiKey::from_e2b_form(text);
        let (id, secret) = ApiKey::parse(decoded.as_deref().unwrap_or(text))?;
        let invalid = || unauthenticated("invalid or revoked API key");
        let key = self.store.get_key(&id).await?.ok_or_else(invalid)?;
        if !ApiKey::verify(&self.pepper, secret, &key.hash) {
            return Err(invalid());
        }
        if let Err(why) = usable(&key, self.clock.now()) {
            return Err(unauthenticated(format!(
                "API key {id} is {why}: ask a team admin for a new one"
            )));
        }
        self.caller_for(key, None).await
    }

    async fn sandbox_token(&self, text: &str, peer: Option<IpAddr>) -> Result<Caller, AppError> {
        let now = self.clock.now();
        let claims = self
            .tokens
            .verify(text, now)
            .map_err(|e| unauthenticated(e.to_string()))?;
        let gone = || unauthenticated("sandbox token: its sandbox is no longer running");
        let sandbox = self
            .store
            .get_sandbox(&claims.sbx)
            .await?
            .ok_or_else(gone)?;
        let dispatched = sandbox.team == claims.team
            && sandbox.owner == claims.sub
            && sandbox.created_by == claims.key;
        if sandbox.state.is_terminal() || !dispatched {
            return Err(gone());
        }
        let from_own_sandbox = match (self.sources.origin(&claims.sbx), peer) {
            (Some(origin), Some(peer)) => origin.admits(peer),
            _ => false,
        };
        if !from_own_sandbox {
            return Err(unauthenticated(
                "sandbox token presented from outside its sandbox",
            ));
        }
        let revoked = || unauthenticated("sandbox token: its dispatcher's key was revoked");
        let key = self.store.get_key(&claims.key).await?.ok_or_else(revoked)?;
        if usable(&key, now).is_err() || key.user != claims.sub {
            return Err(revoked());
        }
        self.caller_for(key, Some(claims.sbx)).await
    }

    async fn caller_for(
        &self,
        key: KeyRecord,
        sandbox: Option<SandboxId>,
    ) -> Result<Caller, AppError> {
        let team = self.store.get_team(&key.team).await?.ok_or_else(|| {
            AppError(WarrenError::internal(format!(
                "key {} names team {}, which does not exist",
                key.id, key.team
            )))
        })?;
        let mut permissions = key_permissions(key.role, key.scopes.as_deref(), team.operator);
        if sandbox.is_some() {
            permissions = permissions.intersect(Permissions::SANDBOX_TOKEN);
        }
        Ok(Caller {
            team: key.team,
            user: key.user,
            key_id: key.id,
            role: key.role,
            permissions,
            sandbox,
        })
    }
}

/// Middleware: rejects requests without valid credentials (an API key or
/// sandbox token, or on the API listener a dashboard session cookie), else
/// records the caller.
pub async fn authenticate(
    State(auth): State<Authenticator>,
    mut req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // A request with a key of its own is the key's; the session cookie
    // counts only without one, and only on the API listener.
    let cookie = session::cookie(req.headers())
        .filter(|_| auth.accepts == Credentials::ApiKeys)
        .filter(|_| presented_credential(req.headers()).is_none());
    let caller = match cookie {
        Some(id) => {
            auth.session_caller(id, req.method(), req.headers(), req.uri().query())
                .await?
        }
        None => auth.authenticate(req.headers(), peer).await?,
    };
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// Middleware (inside [`authenticate`]): refuses a caller the route's rule
/// does not admit. Sandbox-id checks (own team, own sandbox) happen in the
/// `SandboxPath` extractor, which answers 404 so ids do not leak.
/// Finds the rule of a method on a route template; the router hands the
/// authorizer its own list's (`api::rule_for`).
pub type Rules = fn(&axum::http::Method, &str) -> Option<Rule>;

pub async fn authorize(
    axum::extract::State(rules): axum::extract::State<Rules>,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let caller = req
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| AppError(WarrenError::internal("authorize ran before authenticate")))?;
    let denied = |message: String| AppError(WarrenError::new(ErrorKind::PermissionDenied, message));
    let rule = rules(req.method(), &route).ok_or_else(|| {
        denied(format!(
            "{} {route} is not open to API callers",
            req.method()
        ))
    })?;
    if caller.sandbox.is_some() && !rule.sandbox_token {
        return Err(denied(format!(
            "a sandbox token cannot call {} {route}",
            req.method()
        )));
    }
    if let Some(scope) = rule.scope
        && !caller.permissions.contains(scope)
    {
        return Err(denied(format!(
            "this key lacks the scope {scope} needed for {} {route} (its role is {})",
            req.method(),
            caller.role
        )));
    }
    Ok(next.run(req).await)
}
