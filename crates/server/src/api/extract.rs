//! Extractors whose rejections are API errors (JSON `{code, message}`), not
//! axum's plain-text defaults.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use warren_core::{ErrorKind, SandboxId, WarrenError};

use crate::error::AppError;

/// A JSON body; malformed input, unknown fields and oversized bodies are
/// reported precisely.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(AppError(json_rejection(rejection))),
        }
    }
}

fn json_rejection(r: JsonRejection) -> WarrenError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return WarrenError::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "request body is larger than {} bytes",
                super::JSON_BODY_LIMIT
            ),
        );
    }
    let message = match &r {
        JsonRejection::MissingJsonContentType(_) => {
            "expected a JSON body with `Content-Type: application/json`".to_owned()
        }
        other => format!("invalid JSON body: {}", other.body_text()),
    };
    WarrenError::invalid(message)
}

/// The `{id}` path segment as a sandbox id. A malformed id cannot name any
/// sandbox, so it is reported as not found.
pub struct SandboxPath(pub SandboxId);

impl<S: Send + Sync> FromRequestParts<S> for SandboxPath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| AppError(WarrenError::invalid(e.body_text())))?;
        parse_sandbox(&raw).map(SandboxPath)
    }
}

fn parse_sandbox(raw: &str) -> Result<SandboxId, AppError> {
    raw.parse::<SandboxId>().map_err(|_| {
        AppError(WarrenError::not_found(format!(
            "sandbox '{}' not found",
            raw.chars().take(64).collect::<String>()
        )))
    })
}

/// `{id}/snapshots/{snapshot}`: a sandbox id and a snapshot's name or id.
pub struct SandboxSnapshotPath(pub SandboxId, pub String);

impl<S: Send + Sync> FromRequestParts<S> for SandboxSnapshotPath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((raw, snapshot)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| AppError(WarrenError::invalid(e.body_text())))?;
        Ok(SandboxSnapshotPath(parse_sandbox(&raw)?, snapshot))
    }
}
