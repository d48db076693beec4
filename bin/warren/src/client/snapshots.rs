//! Calls of the pause/resume, snapshot, rollback and fork routes.

use reqwest::Method;
use warren_api_types::{
    CreateSnapshotRequest, ForkRequest, ForkResponse, PauseRequest, RollbackRequest, Sandbox,
    Snapshot, SnapshotList,
};
use warren_core::{PauseMode, SandboxId};

use super::{CALL_TIMEOUT, Client, ClientError};

impl Client {
    /// Pauses `id`, keeping only its files if `fs_only`.
    pub async fn pause(&self, id: &SandboxId, fs_only: bool) -> Result<Sandbox, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "pause"]);
        let mut req = self.request(Method::POST, url);
        if fs_only {
            req = req.json(&PauseRequest {
                mode: Some(PauseMode::Filesystem.to_string()),
            });
        }
        self.json(req, "pausing the sandbox").await
    }

    pub async fn resume(&self, id: &SandboxId) -> Result<Sandbox, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "resume"]);
        self.json(self.request(Method::POST, url), "resuming the sandbox")
            .await
    }

    pub async fn snapshot(&self, id: &SandboxId, name: &str) -> Result<Snapshot, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "snapshots"]);
        let req = self
            .request(Method::POST, url)
            .json(&CreateSnapshotRequest { name: name.into() });
        self.json(req, "taking the snapshot").await
    }

    pub async fn snapshots(&self, id: &SandboxId) -> Result<SnapshotList, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "snapshots"]);
        self.json(self.request(Method::GET, url), "listing snapshots")
            .await
    }

    pub async fn delete_snapshot(&self, id: &SandboxId, which: &str) -> Result<(), ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "snapshots", which]);
        let req = self.request(Method::DELETE, url).timeout(CALL_TIMEOUT);
        self.send(req, "deleting the snapshot").await.map(drop)
    }

    pub async fn rollback(&self, id: &SandboxId, snapshot: &str) -> Result<Sandbox, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "rollback"]);
        let req = self.request(Method::POST, url).json(&RollbackRequest {
            snapshot: snapshot.into(),
        });
        self.json(req, "rolling back").await
    }

    pub async fn fork(&self, id: &SandboxId, count: u32) -> Result<ForkResponse, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "fork"]);
        let req = self.request(Method::POST, url).json(&ForkRequest { count });
        self.json(req, "forking the sandbox").await
    }
}
