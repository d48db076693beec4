//! `/v1/webhooks`: lifecycle webhooks out (`docs/webhooks.md`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `http://` or `https://`, at most 2048 bytes.
    pub url: String,
    /// Event names (`sandbox.created`, `sandbox.paused`, …) or `*`.
    pub events: Vec<String>,
    /// `whsec_` and base64 of 24-64 bytes; generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
    /// A label, at most 128 characters.
    #[serde(default)]
    pub name: Option<String>,
}

/// One registration (its secret is never shown again).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_at: String,
}

/// The answer to a registration: the secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The Standard Webhooks secret deliveries are signed with.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct WebhookList {
    pub webhooks: Vec<Webhook>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub attempt: u32,
    pub at: String,
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// Why it did not count (connect error, timeout, refused address).
    pub error: Option<String>,
    /// The start of the receiver's answer (at most 4 KiB).
    pub response: Option<String>,
}

/// One event's delivery to one registration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Delivery {
    /// The event's id: the `webhook-id` header of every attempt.
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub sandbox_id: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub log: Vec<DeliveryAttempt>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct DeliveryList {
    pub deliveries: Vec<Delivery>,
}
