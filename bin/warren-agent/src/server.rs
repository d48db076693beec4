//! The HTTP router and the access-token check.
//!
//! Routes: `GET /health`, `POST /init`, `GET /logs` (Warren's own: the
//! start command's output), `POST /quiesce` (Warren's own: ends every
//! process but the agent, see `crate::quiesce`), `GET|POST /files`, and
//! `POST /<service>/<Method>` for the two Connect services. When `/init` set
//! an access token, every request but `/health` must carry it in
//! `X-Access-Token`; `/files` may instead carry a valid `signature`.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use warren_envd::http_api::{ACCESS_TOKEN_HEADER, file_signature, file_signature_input};
use warren_envd::{Code, ConnectError};

use crate::fs::files::{self, FilesError, FilesQuery};
use crate::methods::Reply;
use crate::state::Shared;
use crate::{init, rpc};

pub fn router(state: Shared) -> Router {
    let download: MethodRouter<Shared> =
        get(files::download).layer(CompressionLayer::new().gzip(true));
    let upload: MethodRouter<Shared> =
        post(files::upload).layer(RequestDecompressionLayer::new().gzip(true));
    let files_route: MethodRouter<Shared> =
        download.merge(upload).layer(DefaultBodyLimit::disable());
    Router::new()
        .route("/health", get(init::health))
        .route("/init", post(init::init))
        .route("/logs", get(crate::logs::logs))
        .route("/quiesce", post(crate::quiesce::quiesce))
        .route("/files", files_route)
        .route("/{service}/{method}", post(dispatch))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

/// A Connect service: answers one call of its method named by the
/// second argument.
type Service = fn(Shared, String, HeaderMap, Body) -> Reply;

/// The Connect services, by name; each looks its methods up in its own
/// table (see [`crate::methods`]).
static SERVICES: &[(&str, Service)] = &[
    (
        warren_envd::process::SERVICE,
        |state, method, headers, body| {
            Box::pin(crate::process::service::dispatch(
                state, method, headers, body,
            ))
        },
    ),
    (
        warren_envd::filesystem::SERVICE,
        |state, method, headers, body| {
            Box::pin(crate::fs::service::dispatch(state, method, headers, body))
        },
    ),
];

async fn dispatch(
    State(state): State<Shared>,
    Path((service, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match SERVICES.iter().find(|(name, _)| *name == service) {
        Some((_, serve)) => serve(state, method, headers, body).await,
        None => rpc::error_response(&ConnectError::new(
            Code::Unimplemented,
            format!("service {service:?} is not served here"),
        )),
    }
}

async fn not_found() -> Response {
    FilesError::from_status(StatusCode::NOT_FOUND, "no such endpoint").into_response()
}

/// Compares in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer to a request without a usable credential.
const WRONG_TOKEN: &str =
    "missing or wrong access token: send the token from /init in X-Access-Token";

/// envd's answer to a signed URL whose signature is right but past its
/// `signature_expiration`.
const SIGNATURE_EXPIRED: &str = "signature is already expired";

/// Checks a signed `/files` URL: `Err` with what to tell the client. The
/// signature is judged first, so only its holder learns that it expired.
fn check_signature(req: &Request, token: &str) -> Result<(), &'static str> {
    let Ok(Query(q)) = Query::<FilesQuery>::try_from_uri(req.uri()) else {
        return Err(WRONG_TOKEN);
    };
    let (Some(sig), Some(path)) = (q.signature.as_deref(), q.path.as_deref()) else {
        return Err(WRONG_TOKEN);
    };
    let op = if req.method() == Method::GET {
        "read"
    } else {
        "write"
    };
    let input = file_signature_input(
        path,
        op,
        q.username.as_deref().unwrap_or(""),
        token,
        q.signature_expiration,
    );
    let expected = file_signature(&Sha256::digest(input.as_bytes()));
    if !constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
        return Err(WRONG_TOKEN);
    }
    if let Some(exp) = q.signature_expiration {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if i64::try_from(now).unwrap_or(i64::MAX) > exp {
            return Err(SIGNATURE_EXPIRED);
        }
    }
    Ok(())
}

async fn authorize(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let Some(token) = state.defaults().token else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path == "/health" {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(ACCESS_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok());
    let verdict = match presented {
        Some(p) if constant_time_eq(p.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(WRONG_TOKEN),
        None if path == "/files" => check_signature(&req, &token),
        None => Err(WRONG_TOKEN),
    };
    let Err(message) = verdict else {
        return next.run(req).await;
    };
    if matches!(path, "/files" | "/init") {
        FilesError::from_status(StatusCode::UNAUTHORIZED, message).into_response()
    } else {
        rpc::error_response(&ConnectError::new(Code::Unauthenticated, message))
    }
}
