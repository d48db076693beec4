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
    #[schema(value_type = Object)]
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
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub dedupe_key: Option<String>,
    pub received_at: String,
    /// `pending` until the sandbox acknowledges it, then `acknowledged`.
    pub delivery: String,
}

/// `GET /v1/sandboxes/{id}/events?after=&limit=`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct EventList {
    pub events: Vec<Event>,
    /// The `after` that lists the next page; absent on the last one.
    pub next_after: Option<u64>,
}
