//! E2B's error body: `{"code": <HTTP status>, "message": "…"}`. The status
//! comes from the same mapping as the native API ([`crate::error::status_of`]).

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use warren_core::WarrenError;

use crate::error::{AppError, public_message, status_of};

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
struct Body {
    code: u16,
    message: String,
}

impl IntoResponse for E2bError {
    fn into_response(self) -> Response {
        let WarrenError { kind, message } = self.0;
        let message = public_message(kind, message);
        let status = status_of(kind);
        (
            status,
            Json(Body {
                code: status.as_u16(),
                message,
            }),
        )
            .into_response()
    }
}

pub type E2bResult<T> = Result<T, E2bError>;
