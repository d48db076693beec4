//! Extractors whose rejections are API errors (JSON `{code, message}`), not
//! axum's plain-text defaults.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use warren_core::{ErrorKind, SandboxId, WarrenError};

use crate::auth::Caller;
use crate::error::AppError;
use crate::state::AppState;

/// Largest JSON request body.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body; malformed input, unknown fields and oversized bodies are
/// reported precisely. Every request body of the API is a JSON object:
/// anything else (an array, which serde would otherwise take for a
/// struct's fields in order, a string, a number) is refused. As
/// `Option<ApiJson<T>>` a body may be left out (empty or blank): `None`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = json_content_type(req.headers());
        if !json {
            return Err(not_json());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| AppError(json_rejection(r.into())))?;
        decode(json, &bytes)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let json = json_content_type(req.headers());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| AppError(json_rejection(r.into())))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        decode(json, &bytes).map(Some)
    }
}

fn not_json() -> AppError {
    AppError(WarrenError::invalid(
        "expected a JSON body with `Content-Type: application/json`",
    ))
}

/// The JSON object `bytes`, sent with a JSON content type if `json`.
fn decode<T: DeserializeOwned>(json: bool, bytes: &Bytes) -> Result<ApiJson<T>, AppError> {
    if !json {
        return Err(not_json());
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError(WarrenError::invalid(
            "invalid JSON body: expected a JSON object",
        )));
    }
    axum::Json::<T>::from_bytes(bytes)
        .map(|axum::Json(v)| ApiJson(v))
        .map_err(|r| AppError(json_rejection(r)))
}

/// `application/json` or any `application/*+json`, parameters aside: what
/// axum's `Json` takes.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_rejection(r: JsonRejection) -> WarrenError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return WarrenError::new(
            ErrorKind::PayloadTooLarge,
            format!("request body is larger than {} bytes", JSON_BODY_LIMIT),
        );
    }
    WarrenError::invalid(format!("invalid JSON body: {}", r.body_text()))
}

/// A query string; malformed values and unknown parameters are API errors
/// (400, JSON) like a bad body, not axum's plain-text rejection.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|r| {
                AppError(WarrenError::invalid(format!(
                    "invalid query: {}",
                    r.body_text()
                )))
            })
    }
}

/// The `{id}` path segment as a sandbox the caller may address: one of its
/// team's, and for a sandbox token only the token's own sandbox. Anything
/// else — a malformed id, an unknown one, another team's — is the same
/// "not found", so ids do not leak across teams.
pub struct SandboxPath(pub SandboxId);

impl FromRequestParts<AppState> for SandboxPath {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| AppError(WarrenError::invalid(e.body_text())))?;
        addressable_sandbox(parts, state, &raw)
            .await
            .map(SandboxPath)
    }
}

/// The sandbox `raw` names, if the caller may address it (see
/// [`SandboxPath`]); otherwise "not found".
async fn addressable_sandbox(
    parts: &Parts,
    state: &AppState,
    raw: &str,
) -> Result<SandboxId, AppError> {
    let not_found = || {
        AppError(WarrenError::not_found(format!(
            "sandbox '{}' not found",
            raw.chars().take(64).collect::<String>()
        )))
    };
    let id = raw.parse::<SandboxId>().map_err(|_| not_found())?;
    let caller = parts
        .extensions
        .get::<Caller>()
        .ok_or_else(|| AppError(WarrenError::internal("no caller on a protected route")))?;
    if caller.sandbox.as_ref().is_some_and(|own| *own != id) {
        return Err(not_found());
    }
    match state.sandboxes.lookup(&id).await? {
        Some(rec) if rec.team == caller.team => Ok(id),
        _ => Err(not_found()),
    }
}

/// The sandbox calling with its sandbox token (the `/v1/self` routes);
/// an API key gets 403.
pub struct SelfSandbox(pub SandboxId);

impl<S: Send + Sync> FromRequestParts<S> for SelfSandbox {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .and_then(|c| c.sandbox.clone())
            .map(SelfSandbox)
            .ok_or_else(|| {
                AppError(WarrenError::new(
                    warren_core::ErrorKind::PermissionDenied,
                    "/v1/self is called from inside a sandbox, at WARREN_API_URL, with the token in WARREN_SANDBOX_TOKEN_FILE",
                ))
            })
    }
}

/// `{id}/snapshots/{snapshot}`: an addressable sandbox (as [`SandboxPath`])
/// and a snapshot's name or id.
pub struct SandboxSnapshotPath(pub SandboxId, pub String);

impl FromRequestParts<AppState> for SandboxSnapshotPath {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((raw, snapshot)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| AppError(WarrenError::invalid(e.body_text())))?;
        let id = addressable_sandbox(parts, state, &raw).await?;
        Ok(SandboxSnapshotPath(id, snapshot))
    }
}
