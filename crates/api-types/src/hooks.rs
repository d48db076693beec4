//! Sources of events: inbound webhook hooks and timers
//! (`docs/events.md`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where one hook sends the deliveries that match, and which match.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HookSubscription {
    /// Its number within the hook, given by Warren (ignored in requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// A sandbox of the caller's team.
    pub sandbox: String,
    /// `owner/name`; required for GitHub hooks, absent for standard ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Only deliveries about this pull request (GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<u64>,
    /// Only deliveries about this branch (GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Event types: GitHub's `X-GitHub-Event` names (at least one), or the
    /// `type` of standard payloads (none is every type).
    #[serde(default)]
    pub events: Vec<String>,
}

/// `POST /v1/hooks`.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateHookRequest {
    /// `github` (`X-Hub-Signature-256`) or `standard` (Standard Webhooks).
    pub kind: String,
    /// The shared secret; Warren makes one when absent. GitHub: 16-256
    /// printable characters; standard: `whsec_` and base64 of 24-64 bytes.
    #[serde(default)]
    pub secret: Option<String>,
    /// At least one, at most 100.
    pub subscriptions: Vec<HookSubscription>,
}

impl std::fmt::Debug for CreateHookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateHookRequest")
            .field("kind", &self.kind)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("subscriptions", &self.subscriptions)
            .finish()
    }
}

/// A hook as the API shows it: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Hook {
    pub id: String,
    pub kind: String,
    /// The path deliveries are posted to (no API key; the signature is
    /// the credential).
    pub delivery_path: String,
    pub subscriptions: Vec<HookSubscription>,
    /// Deliveries accepted (a replayed one is not counted again).
    pub accepted: u64,
    /// Deliveries refused: bad or missing signature, stale timestamp, too
    /// large.
    pub rejected: u64,
    pub last_delivery_at: Option<String>,
    pub created_at: String,
    /// The key that created it.
    pub created_by: String,
}

/// The answer to `POST /v1/hooks`: the secret is shown this once.
#[derive(Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct HookCreated {
    pub hook: Hook,
    pub secret: String,
}

impl std::fmt::Debug for HookCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookCreated")
            .field("hook", &self.hook)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `GET /v1/hooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct HookList {
    pub hooks: Vec<Hook>,
}

/// The answer to a good delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct DeliveryAccepted {
    /// Sandboxes whose inbox now holds the delivery.
    pub delivered: u32,
    /// The delivery id was seen before: nothing was delivered again.
    pub duplicate: bool,
}

/// The event a timer sends.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimerEvent {
    #[serde(rename = "type")]
    pub kind: String,
    /// Default `timer`.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    #[schema(value_type = Value)]
    pub data: serde_json::Value,
}

/// `POST /v1/sandboxes/{id}/timers`: `at` or `after`, not both.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CreateTimerRequest {
    /// RFC 3339.
    #[serde(default)]
    pub at: Option<String>,
    /// Seconds (a number) or a duration such as `"90s"`, `"15m"`, `"1h30m"`,
    /// `"2d"`.
    #[serde(default)]
    #[schema(value_type = Option<TimerAfterSchema>)]
    pub after: Option<serde_json::Value>,
    pub event: TimerEvent,
}

/// `after` of a timer as the document describes it: whole seconds, or a
/// duration text. The request keeps the raw value and reports either
/// form's errors itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum TimerAfterSchema {
    Seconds(u64),
    Duration(String),
}

/// A pending timer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Timer {
    pub id: String,
    pub fires_at: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    #[schema(value_type = Value)]
    pub data: serde_json::Value,
    pub created_at: String,
}

/// `GET /v1/sandboxes/{id}/timers`: pending timers, soonest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TimerList {
    pub timers: Vec<Timer>,
}
