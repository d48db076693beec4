//! Calls of a sandbox's inbox routes (`/v1/sandboxes/{id}/events`, `/wake`).

use warren_api_types::{EventAccepted, EventList, SendEventRequest, WakeRequest};
use warren_core::SandboxId;

use super::{Client, ClientError};

impl Client {
    pub async fn send_event(
        &self,
        id: &SandboxId,
        event: &SendEventRequest,
    ) -> Result<EventAccepted, ClientError> {
        let path = ["sandboxes", id.as_str(), "events"];
        self.post_json(&path, event, "sending the event").await
    }

    pub async fn events(
        &self,
        id: &SandboxId,
        after: u64,
        limit: u32,
    ) -> Result<EventList, ClientError> {
        let mut url = self.url(&["sandboxes", id.as_str(), "events"]);
        url.query_pairs_mut()
            .append_pair("after", &after.to_string())
            .append_pair("limit", &limit.to_string());
        let req = self.request(reqwest::Method::GET, url);
        self.json(req, "listing the events").await
    }

    pub async fn set_wake(
        &self,
        id: &SandboxId,
        wake: &WakeRequest,
    ) -> Result<WakeRequest, ClientError> {
        let path = ["sandboxes", id.as_str(), "wake"];
        self.put_json(&path, wake, "setting the wake policy").await
    }
}
