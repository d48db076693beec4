use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use time::OffsetDateTime;
use warren_core::{ErrorKind, KeyId, WarrenError};
use warren_store::Store;

use super::keys::{ApiKey, Pepper};
use crate::error::AppError;

/// Who is calling; inserted into request extensions by [`require_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: KeyId,
}

/// What the authenticator needs.
#[derive(Clone)]
pub struct Authenticator {
    pub store: Arc<dyn Store>,
    pub pepper: Pepper,
}

fn unauthenticated(message: &str) -> AppError {
    AppError(WarrenError::new(ErrorKind::Unauthenticated, message))
}

/// The key from `Authorization: Bearer KEY` or `X-API-Key: KEY`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl Authenticator {
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AppError> {
        let text = presented_key(headers).ok_or_else(|| {
            unauthenticated("missing API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`")
        })?;
        let (id, secret) = ApiKey::parse(text)?;
        let invalid = || unauthenticated("invalid or revoked API key");
        let record = self.store.get_key(&id).await?.ok_or_else(invalid)?;
        if record
            .revoked_at
            .is_some_and(|t| t <= OffsetDateTime::now_utc())
        {
            return Err(invalid());
        }
        if !ApiKey::verify(&self.pepper, secret, &record.hash) {
            return Err(invalid());
        }
        Ok(Caller { key_id: id })
    }
}

/// Middleware: rejects requests without a valid key, else records the caller.
pub async fn require_key(
    State(auth): State<Authenticator>,
    mut req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let caller = auth.authenticate(req.headers()).await?;
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}
