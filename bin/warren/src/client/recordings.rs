//! Calls to a sandbox's terminal recordings.

use reqwest::Method;
use warren_api_types::RecordingList;
use warren_core::{RecordingId, SandboxId};

use super::{Client, ClientError};

impl Client {
    /// The sandbox's recorded terminal sessions, oldest first.
    pub async fn recordings(&self, id: &SandboxId) -> Result<RecordingList, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "recordings"]);
        self.json(
            self.request(Method::GET, url),
            "listing terminal recordings",
        )
        .await
    }

    /// One recording, as its asciicast v2 bytes.
    pub async fn recording(
        &self,
        id: &SandboxId,
        recording: &RecordingId,
    ) -> Result<bytes::Bytes, ClientError> {
        let what = "reading a terminal recording";
        let url = self.url(&["sandboxes", id.as_str(), "recordings", recording.as_str()]);
        let resp = self.send(self.request(Method::GET, url), what).await?;
        resp.bytes().await.map_err(|e| self.transport(e, what))
    }
}
