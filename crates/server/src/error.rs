//! The one place where errors become HTTP responses.
//!
//! Bad input is reported precisely; internal errors are logged with their
//! detail and answered with an opaque message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use warren_api_types::ApiError;
use warren_core::{ErrorKind, WarrenError};

/// An error on its way to the client.
#[derive(Debug)]
pub struct AppError(pub WarrenError);

impl<E: Into<WarrenError>> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError(e.into())
    }
}

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::FailedPrecondition => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::ResourceExhausted | ErrorKind::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::BudgetExceeded => StatusCode::PAYMENT_REQUIRED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The message a client may see: an internal error's detail is logged and
/// replaced by an opaque text.
pub fn public_message(kind: ErrorKind, message: String) -> String {
    if kind == ErrorKind::Internal {
        tracing::error!(error = %message, "internal error");
        "internal error: see the daemon's log for details".to_owned()
    } else {
        message
    }
}

/// Adds `Retry-After` to `resp` when the error carries a retry hint.
pub fn add_retry_after(resp: &mut Response, retry_after_s: Option<u32>) {
    if let Some(seconds) = retry_after_s {
        resp.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(seconds),
        );
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let WarrenError {
            kind,
            message,
            retry_after_s,
        } = self.0;
        let message = public_message(kind, message);
        let body = ApiError {
            code: kind.code().to_owned(),
            message,
            retry_after_s,
        };
        let mut resp = (status_of(kind), Json(body)).into_response();
        add_retry_after(&mut resp, retry_after_s);
        if kind == ErrorKind::PayloadTooLarge {
            // The unread rest of the body is still on the connection: tell
            // the client not to reuse it.
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, AppError>;
