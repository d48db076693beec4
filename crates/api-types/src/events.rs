//! Sandboxes' inboxes: events sent to a sandbox, kept in order.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/sandboxes/{id}/events`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SendEventRequest {
    /// What happened, e.g. `ci.finished`: 1-128 of `a-z A-Z 0-9 . _ : / -`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Who says so, e.g. `github` or a URL: 1-256 printable characters.
    pub source: String,
    /// Any JSON value, at most 256 KiB once serialized; default null.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub data: serde_json::Value,
    /// A sender's retry with the same key gets the first event's number
    /// back instead of a second event; 1-256 printable characters.
    #[serde(default)]
    pub dedupe_key: Option<String>,
}

/// The answer to a send: 202 once the event is durable.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct EventAccepted {
    /// Its place in the sandbox's inbox, from 1.
    pub seq: u64,
    /// Whether this send was a retry of an event already in the inbox.
    pub duplicate: bool,
}

/// One event of an inbox.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Event {
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    #[schema(value_type = Value)]
    pub data: serde_json::Value,
    pub dedupe_key: Option<String>,
    pub received_at: String,
    /// `pending` until the sandbox has been handed it, then `delivered`,
    /// then `acknowledged`.
    pub delivery: String,
    /// When the sandbox was first handed it.
    pub delivered_at: Option<String>,
    pub acked_at: Option<String>,
}

/// `GET /v1/sandboxes/{id}/events?after=&limit=`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct EventList {
    pub events: Vec<Event>,
    /// The `after` that lists the next page; absent on the last one.
    pub next_after: Option<u64>,
}

/// `{"on": [patterns]}`: event types, or prefixes ending in `*`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct WakePolicySchema {
    pub on: Vec<String>,
}

/// `{"cmd": [program, args...]}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct EventHandlerSchema {
    pub cmd: Vec<String>,
}

/// `PUT /v1/sandboxes/{id}/wake`, and its answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WakeRequest {
    pub on: Vec<String>,
}

/// `GET /v1/self/events?after=&wait=&limit=`: events for the calling
/// sandbox that it has not acknowledged.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SelfEvents {
    pub events: Vec<Event>,
    /// Every event up to this number is acknowledged.
    pub acked_seq: u64,
    /// The newest event's number.
    pub last_seq: u64,
}

/// `POST /v1/self/events/ack`: acknowledges every event up to `seq`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    pub seq: u64,
}

/// The answer to an acknowledgement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AckResult {
    pub acked_seq: u64,
}
