//! Files in and out of a sandbox, streamed through its agent (`/files`).
//! Uploads are counted as they pass: past the limit the stream is cut, the
//! agent discards its temporary file, and the caller gets `payload_too_large`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use warren_core::{ErrorKind, SandboxId, WarrenError};

use super::Sandboxes;

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
        let client = self.agents.get(id, user)?;
        let stream = client.read_file(path).await.map_err(crate::agent_error)?;
        Ok(stream.map_err(std::io::Error::other))
    }

    /// Streams `body` into `path`; returns the number of bytes written.
    pub async fn write_file<S, E>(
        &self,
        id: &SandboxId,
        path: &str,
        user: Option<&str>,
        body: S,
        limit: u64,
    ) -> Result<u64, WarrenError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        validate_path(path)?;
        self.get_running(id).await?;
        let client = self.agents.get(id, user)?;
        let seen = Arc::new(AtomicU64::new(0));
        let counter = seen.clone();
        let counted = body.map(move |chunk| {
            let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
            let total =
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            if total > limit {
                return Err(UploadError::TooLarge(limit));
            }
            Ok(chunk)
        });
        let result = client.write_file_stream(path, counted).await;
        let written = seen.load(Ordering::Relaxed);
        match result {
            Ok(_) => Ok(written),
            Err(_) if written > limit => Err(WarrenError::new(
                ErrorKind::PayloadTooLarge,
                format!("upload is larger than the {limit}-byte limit; nothing was written"),
            )),
            Err(e) => Err(crate::agent_error(e)),
        }
    }
}
