//! Commands started through E2B's envd protocol land in the audit log like
//! native execs (`process.exec`).
//!
//! The proxy reads the `process.Process/Start` request (one Connect frame of
//! JSON, at most [`MAX_START_REQUEST`] bytes) before forwarding it
//! unchanged, and watches the frames of the response stream as they pass:
//! the `start` event gives the pid, the `end` event the exit code. The entry
//! is recorded when the `end` event passes, or — with what is known, marked
//! `detached` — when the client lets go of the stream first (a background
//! command, or a client that went away). The command's output is never
//! looked at beyond the frame headers and event kinds.
//!
//! Who acted is a holder of the sandbox's envd access token (or of an API
//! key the proxy accepted in its place): the actor chain is
//! `["envd-token:<sandbox id>"]`, in the sandbox's team.

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;
use warren_audit::Outcome;
use warren_core::SandboxId;
use warren_envd::envelope::FrameDecoder;
use warren_envd::http_api::user_from_basic;
use warren_envd::process::{ProcessEvent, StartRequest, StartResponse};

use crate::audit::Action;
use crate::audit::{Audit, AuditActor, Event};
use crate::service::Sandboxes;

/// The Connect path of a process start.
pub const START_PATH: &str = "/process.Process/Start";
/// Largest start request the proxy reads (commands and environments).
pub const MAX_START_REQUEST: usize = 1024 * 1024;

/// A command the proxy saw start, waiting for its end.
pub struct ExecRecord {
    audit: Audit,
    actor: AuditActor,
    sandbox: SandboxId,
    details: serde_json::Map<String, Value>,
    started: Instant,
    decoder: FrameDecoder,
    done: bool,
}

impl ExecRecord {
    fn new(
        audit: Audit,
        actor: AuditActor,
        sandbox: SandboxId,
        start: &StartRequest,
        user: String,
    ) -> Self {
        let mut details = serde_json::Map::new();
        let process = start.process.clone().unwrap_or_default();
        let mut argv = vec![process.cmd];
        argv.extend(process.args);
        details.insert("argv".into(), argv.into());
        details.insert("user".into(), user.into());
        details.insert("cwd".into(), process.cwd.into());
        details.insert("via".into(), "e2b".into());
        Self {
            audit,
            actor,
            sandbox,
            details,
            started: Instant::now(),
            decoder: FrameDecoder::default(),
            done: false,
        }
    }

    /// Looks at one chunk of the response stream.
    fn observe(&mut self, chunk: &[u8]) {
        if self.done {
            return;
        }
        self.decoder.push(chunk);
        while let Ok(Some(frame)) = self.decoder.next_frame() {
            if frame.is_end_stream() {
                continue;
            }
            let Ok(resp) = frame.json::<StartResponse>() else {
                continue;
            };
            match resp.event {
                Some(ProcessEvent::Start(s)) => {
                    self.details.insert("pid".into(), s.pid.into());
                }
                Some(ProcessEvent::End(end)) => {
                    self.details
                        .insert("exit_code".into(), end.exit_code.into());
                    self.details.insert("status".into(), end.status.into());
                    self.finish(Outcome::Ok);
                    return;
                }
                _ => {}
            }
        }
    }

    /// Records the entry once.
    fn finish(&mut self, outcome: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut event = Event::sandbox(Action::ProcessExec, &self.sandbox, outcome);
        event.details = std::mem::take(&mut self.details);
        event.details.insert("duration_ms".into(), ms.into());
        let (audit, actor) = (self.audit.clone(), self.actor.clone());
        tokio::spawn(async move { audit.record_done(&actor, event).await });
    }
}

impl Drop for ExecRecord {
    fn drop(&mut self) {
        if !self.done {
            self.details.insert("detached".into(), true.into());
            self.finish(Outcome::Ok);
        }
    }
}

/// Reads a start request's body: the request to forward (same bytes) and
/// the record to fill from the response. A body that is too large or not a
/// start request is forwarded as it is and the agent answers it; nothing
/// starts then, so nothing is recorded.
pub async fn read_start(
    sandboxes: &Sandboxes,
    sandbox: &SandboxId,
    req: Request,
) -> Result<(Request, Option<ExecRecord>), Response> {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match http_body_util::Limited::new(body, MAX_START_REQUEST)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let err = warren_core::WarrenError::new(
                warren_core::ErrorKind::PayloadTooLarge,
                format!("a process start request may be at most {MAX_START_REQUEST} bytes"),
            );
            return Err(axum::response::IntoResponse::into_response(
                super::error::E2bError(err),
            ));
        }
    };
    let mut decoder = FrameDecoder::default();
    decoder.push(&bytes);
    let start = match decoder.next_frame() {
        Ok(Some(frame)) => frame.json::<StartRequest>().ok(),
        _ => None,
    };
    let record = match start {
        Some(start) => {
            let user = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(user_from_basic)
                .unwrap_or_else(|| "user".to_owned());
            let team = match sandboxes.lookup(sandbox).await {
                Ok(Some(rec)) => rec.team.to_string(),
                _ => crate::audit::SYSTEM_TEAM.to_owned(),
            };
            let actor = AuditActor {
                team,
                chain: vec![format!("envd-token:{sandbox}")],
            };
            Some(ExecRecord::new(
                sandboxes.audit().clone(),
                actor,
                sandbox.clone(),
                &start,
                user,
            ))
        }
        None => None,
    };
    Ok((Request::from_parts(parts, Body::from(bytes)), record))
}

/// The response with its stream watched by `record`.
pub fn watch(resp: Response, mut record: ExecRecord) -> Response {
    let (parts, body) = resp.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        match &chunk {
            Ok(bytes) => record.observe(bytes),
            Err(_) => record.finish(Outcome::Error),
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}
