//! A sandbox's log lines (the start command's output and the agent's own,
//! `GET /logs` of its agent), also while it is paused.
//!
//! A running sandbox's agent answers. A pause asks the agent for its lines
//! before the checkpoint (for at most [`FETCH_TIMEOUT`]; an agent that does
//! not answer leaves none) and keeps them in the pause image as
//! [`KEPT_FILE`], written to a temporary name and renamed once the image is
//! committed, so the file is whole or absent. The image goes when the
//! sandbox resumes or ends, and the lines with it: a running agent has them
//! again in its memory, restored with the rest.

use std::time::Duration;

use warren_core::{SandboxId, SandboxState, SnapshotId, WarrenError};
use warren_envd::http_api::LogLine;
use warren_store::SandboxRecord;

use super::Sandboxes;

/// The file of a pause image holding the sandbox's log lines.
pub const KEPT_FILE: &str = "warren-logs.json";
/// How long a pause waits for the agent's lines.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

impl Sandboxes {
    /// The log lines of sandbox `id` from `start_ms` on (Unix ms), oldest
    /// first: its agent's while it runs, those kept at its pause while it is
    /// paused, none otherwise.
    pub async fn sandbox_logs(
        &self,
        id: &SandboxId,
        start_ms: i64,
    ) -> Result<Vec<LogLine>, WarrenError> {
        let Some(rec) = self.store.get_sandbox(id).await? else {
            return Ok(Vec::new());
        };
        match rec.state {
            SandboxState::Running => {
                let client = self.agents.client(id, None).await?;
                client
                    .start_command_logs(start_ms)
                    .await
                    .map_err(crate::agent_error)
            }
            SandboxState::Paused => {
                let mut lines = self.kept_logs(&rec).await;
                lines.retain(|l| l.timestamp_ms >= start_ms);
                Ok(lines)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The lines the agent of `id` holds, to keep with its pause image.
    pub(super) async fn logs_to_keep(&self, id: &SandboxId) -> Option<Vec<LogLine>> {
        let fetch = async {
            let client = self.agents.client(id, None).await.ok()?;
            client.start_command_logs(0).await.ok()
        };
        tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .ok()
            .flatten()
    }

    /// Keeps `lines` in the committed image `snapshot`. A failure costs the
    /// paused sandbox its logs, nothing else.
    pub(super) async fn keep_logs(&self, snapshot: &SnapshotId, lines: Vec<LogLine>) {
        let kept = async {
            let dir = self
                .snapshots
                .open(snapshot)
                .await
                .map_err(|e| e.to_string())?;
            let body = serde_json::to_vec(&lines).map_err(|e| e.to_string())?;
            let temporary = dir.join(format!(".{KEPT_FILE}.tmp"));
            tokio::fs::write(&temporary, body)
                .await
                .map_err(|e| e.to_string())?;
            tokio::fs::rename(&temporary, dir.join(KEPT_FILE))
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(e) = kept.await {
            tracing::warn!(snapshot = %snapshot, error = %e, "the paused sandbox's log lines were not kept");
        }
    }

    async fn kept_logs(&self, rec: &SandboxRecord) -> Vec<LogLine> {
        let Some(snapshot) = &rec.paused_snapshot else {
            return Vec::new();
        };
        let Ok(dir) = self.snapshots.open(snapshot).await else {
            return Vec::new();
        };
        match tokio::fs::read(dir.join(KEPT_FILE)).await {
            Ok(body) => serde_json::from_slice(&body).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }
}
