//! Files in and out of a sandbox, streamed through its agent (`/files`).
//! Uploads are counted as they pass: past the limit the stream is cut, the
//! agent discards its temporary file, and the caller gets `payload_too_large`.
//! Every upload that reached the agent is recorded as a `file.write` audit
//! entry with its path, user, size and the SHA-256 of the bytes, computed
//! as they stream through.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use warren_audit::Outcome;
use warren_core::{ErrorKind, SandboxId, WarrenError};

use super::Sandboxes;
use crate::audit::Action;
use crate::audit::{AuditActor, Event};

/// Why an upload stream was cut.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("upload is larger than {0} bytes")]
    TooLarge(u64),
    #[error("reading the upload failed: {0}")]
    Body(String),
}

fn validate_path(path: &str) -> Result<(), WarrenError> {
    if path.is_empty() {
        return Err(WarrenError::invalid(
            "the `path` query parameter is required",
        ));
    }
    if path.contains('\0') || path.len() > 4096 {
        return Err(WarrenError::invalid(
            "path must be at most 4096 bytes without NUL",
        ));
    }
    Ok(())
}

impl Sandboxes {
    pub async fn read_file(
        &self,
        id: &SandboxId,
        path: &str,
        user: Option<&str>,
    ) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, WarrenError>
    {
        validate_path(path)?;
        self.get_running(id).await?;
        let client = self.agents.client(id, user).await?;
        let stream = client.read_file(path).await.map_err(crate::agent_error)?;
        Ok(stream.map_err(std::io::Error::other))
    }

    /// Streams `body` into `path` on behalf of `actor`; returns the number
    /// of bytes written.
    pub async fn write_file<S, E>(
        &self,
        id: &SandboxId,
        path: &str,
        user: Option<&str>,
        body: S,
        limit: u64,
        actor: &AuditActor,
    ) -> Result<u64, WarrenError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        validate_path(path)?;
        self.get_running(id).await?;
        let client = self.agents.client(id, user).await?;
        let seen = Arc::new(AtomicU64::new(0));
        let counter = seen.clone();
        let digest = Arc::new(Mutex::new(Sha256::new()));
        let hasher = digest.clone();
        let counted = body.map(move |chunk| {
            let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
            if let Ok(mut h) = hasher.lock() {
                h.update(&chunk);
            }
            let total =
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            if total > limit {
                return Err(UploadError::TooLarge(limit));
            }
            Ok(chunk)
        });
        let result = client.write_file_stream(path, counted).await;
        let written = seen.load(Ordering::Relaxed);
        let result = match result {
            Ok(_) => Ok(written),
            Err(_) if written > limit => Err(WarrenError::new(
                ErrorKind::PayloadTooLarge,
                format!("upload is larger than the {limit}-byte limit; nothing was written"),
            )),
            Err(e) => Err(crate::agent_error(e)),
        };
        let sha256 = digest
            .lock()
            .map(|h| hex::encode(h.clone().finalize()))
            .unwrap_or_default();
        let mut event = Event::sandbox(Action::FileWrite, id, Outcome::Ok)
            .with("path", path)
            .with("user", user.unwrap_or("user"))
            .with("size", written)
            .with("sha256", sha256);
        if let Err(e) = &result {
            event.outcome = Outcome::Error;
            event = event.with("error", e.message.clone());
        }
        self.audit.record_done(actor, event).await;
        result
    }
}
