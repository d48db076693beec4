//! Calls of the `/v1/webhooks` routes.

use reqwest::Method;
use warren_api_types::{CreateWebhookRequest, CreatedWebhook, DeliveryList, WebhookList};

use super::{CALL_TIMEOUT, Client, ClientError};

impl Client {
    pub async fn create_webhook(
        &self,
        body: &CreateWebhookRequest,
    ) -> Result<CreatedWebhook, ClientError> {
        self.post_json(&["webhooks"], body, "registering the webhook")
            .await
    }

    pub async fn webhooks(&self) -> Result<WebhookList, ClientError> {
        self.get_json(&["webhooks"], "listing webhooks").await
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<(), ClientError> {
        let req = self
            .request(Method::DELETE, self.url(&["webhooks", id]))
            .timeout(CALL_TIMEOUT);
        self.send(req, "deleting the webhook").await.map(drop)
    }

    pub async fn webhook_deliveries(&self, id: &str) -> Result<DeliveryList, ClientError> {
        self.get_json(&["webhooks", id, "deliveries"], "reading the delivery log")
            .await
    }
}
