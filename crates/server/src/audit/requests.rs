//! The `api.request` entries: one per state-changing API call (POST, PUT,
//! PATCH, DELETE), recorded by a layer around every authenticated route.
//!
//! The entry names the method, the matched route and the status; its target
//! is the sandbox id when the route has one, else the request path; its
//! outcome follows the status (2xx/3xx `ok`, 401/403 `denied`, anything
//! else `error`). It is recorded after the handler answered (the call has
//! happened) and committed before the response leaves — except for
//! streaming answers (`application/x-ndjson`: exec, template builds), whose
//! act is still running when the head goes out and records its own end
//! (`process.exec`): their request entry is appended alongside, so an exec
//! waits for one append, not two. When the audit writer is gone,
//! state-changing calls are refused with an internal error before they run,
//! so none happens unrecorded.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use warren_audit::Outcome;
use warren_core::{SandboxId, WarrenError};

use super::{Audit, AuditActor, Event};
use crate::audit::Action;
use crate::auth::Caller;
use crate::error::AppError;

fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

fn outcome_of(status: StatusCode) -> Outcome {
    match status.as_u16() {
        200..=399 => Outcome::Ok,
        401 | 403 => Outcome::Denied,
        _ => Outcome::Error,
    }
}

/// The sandbox a `/v1/sandboxes/{id}…` path names.
fn sandbox_of(route: &str, path: &str) -> Option<SandboxId> {
    if !route.starts_with("/v1/sandboxes/{id}") {
        return None;
    }
    path.split('/').nth(3)?.parse().ok()
}

/// Middleware: records state-changing calls; see the module docs.
pub async fn record_requests(State(audit): State<Audit>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if !changes_state(&method) {
        return next.run(req).await;
    }
    if audit.is_stopped() {
        return AppError(WarrenError::internal(
            "the audit log writer has stopped: state-changing requests are refused until the daemon restarts",
        ))
        .into_response();
    }
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let actor = req.extensions().get::<Caller>().map_or_else(
        || AuditActor::system("unauthenticated"),
        AuditActor::from_caller,
    );
    let response = next.run(req).await;
    let status = response.status();
    let sandbox = sandbox_of(&route, &path);
    let event = Event {
        action: Action::ApiRequest,
        target: sandbox.as_ref().map_or(path, ToString::to_string),
        sandbox,
        outcome: outcome_of(status),
        details: Default::default(),
    }
    .with("method", method.as_str())
    .with("route", route)
    .with("status", status.as_u16());
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-ndjson"));
    if streaming {
        tokio::spawn(async move { audit.record_done(&actor, event).await });
    } else {
        audit.record_done(&actor, event).await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_status_and_ids_come_from_sandbox_routes() {
        assert_eq!(outcome_of(StatusCode::CREATED), Outcome::Ok);
        assert_eq!(outcome_of(StatusCode::FORBIDDEN), Outcome::Denied);
        assert_eq!(outcome_of(StatusCode::CONFLICT), Outcome::Error);
        let id = SandboxId::generate();
        let path = format!("/v1/sandboxes/{id}/exec");
        assert_eq!(sandbox_of("/v1/sandboxes/{id}/exec", &path), Some(id));
        assert_eq!(
            sandbox_of("/v1/templates/{name}/build", "/v1/templates/x/build"),
            None
        );
        assert_eq!(
            sandbox_of("/v1/sandboxes/{id}", "/v1/sandboxes/nonsense"),
            None
        );
    }
}
