//! E2B's error body: `{"code": <HTTP status>, "message": "…"}`. The status
//! comes from the same mapping as the native API ([`crate::error::status_of`]).
//!
//! Errors raised before an E2B handler runs (authentication, the permission
//! table, unknown paths) are written by the shared layers in the native
//! format; [`respell`] rewrites those bodies for E2B paths.

use axum::Json;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use warren_core::WarrenError;

use crate::error::{AppError, add_retry_after, public_message, status_of};

#[derive(Debug)]
pub struct E2bError(pub WarrenError);

impl<E: Into<WarrenError>> From<E> for E2bError {
    fn from(e: E) -> Self {
        E2bError(e.into())
    }
}

impl From<AppError> for E2bError {
    fn from(e: AppError) -> Self {
        E2bError(e.0)
    }
}

#[derive(Serialize)]
/// E2B's error body.
struct E2bBody {
    code: u16,
    message: String,
}

impl IntoResponse for E2bError {
    fn into_response(self) -> Response {
        let WarrenError {
            kind,
            message,
            retry_after_s,
        } = self.0;
        let message = public_message(kind, message);
        let status = status_of(kind);
        let mut resp = (
            status,
            Json(E2bBody {
                code: status.as_u16(),
                message,
            }),
        )
            .into_response();
        add_retry_after(&mut resp, retry_after_s);
        resp
    }
}

pub type E2bResult<T> = Result<T, E2bError>;

/// Largest error body [`respell`] reads; error bodies are a few hundred bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// An error response of the native API rewritten into E2B's body, keeping
/// its status; other responses pass untouched (never buffered).
pub async fn respell(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(resp.status().is_client_error() || resp.status().is_server_error()) || !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_owned));
    let Some(message) = message else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let body = serde_json::to_vec(&E2bBody {
        code: parts.status.as_u16(),
        message,
    })
    .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
