//! Calls of the `/v1/hooks` and `/v1/sandboxes/{id}/timers` routes.

use reqwest::Method;
use warren_api_types::{
    CreateHookRequest, CreateTimerRequest, Hook, HookCreated, HookList, HookSubscription, Timer,
    TimerList,
};
use warren_core::SandboxId;

use super::{CALL_TIMEOUT, Client, ClientError};

impl Client {
    pub async fn create_hook(&self, body: &CreateHookRequest) -> Result<HookCreated, ClientError> {
        self.post_json(&["hooks"], body, "creating the hook").await
    }

    pub async fn hooks(&self) -> Result<HookList, ClientError> {
        self.get_json(&["hooks"], "listing hooks").await
    }

    pub async fn hook(&self, id: &str) -> Result<Hook, ClientError> {
        self.get_json(&["hooks", id], "reading the hook").await
    }

    pub async fn delete_hook(&self, id: &str) -> Result<(), ClientError> {
        let req = self
            .request(Method::DELETE, self.url(&["hooks", id]))
            .timeout(CALL_TIMEOUT);
        self.send(req, "deleting the hook").await.map(drop)
    }

    pub async fn subscribe_hook(
        &self,
        id: &str,
        body: &HookSubscription,
    ) -> Result<Hook, ClientError> {
        self.post_json(
            &["hooks", id, "subscriptions"],
            body,
            "adding the subscription",
        )
        .await
    }

    pub async fn unsubscribe_hook(&self, id: &str, sub: u32) -> Result<(), ClientError> {
        let sub = sub.to_string();
        let req = self
            .request(
                Method::DELETE,
                self.url(&["hooks", id, "subscriptions", &sub]),
            )
            .timeout(CALL_TIMEOUT);
        self.send(req, "removing the subscription").await.map(drop)
    }

    pub async fn create_timer(
        &self,
        id: &SandboxId,
        body: &CreateTimerRequest,
    ) -> Result<Timer, ClientError> {
        self.post_json(
            &["sandboxes", id.as_str(), "timers"],
            body,
            "setting the timer",
        )
        .await
    }

    pub async fn timers(&self, id: &SandboxId) -> Result<TimerList, ClientError> {
        self.get_json(&["sandboxes", id.as_str(), "timers"], "listing timers")
            .await
    }

    pub async fn delete_timer(&self, id: &SandboxId, timer: &str) -> Result<(), ClientError> {
        let req = self
            .request(
                Method::DELETE,
                self.url(&["sandboxes", id.as_str(), "timers", timer]),
            )
            .timeout(CALL_TIMEOUT);
        self.send(req, "deleting the timer").await.map(drop)
    }
}
