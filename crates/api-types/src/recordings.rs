//! Terminal recordings (`GET /v1/sandboxes/{id}/recordings`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One recorded terminal session (asciicast v2).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Recording {
    pub id: String,
    /// When the terminal opened, RFC 3339.
    pub started_at: String,
    /// The terminal's size when it opened.
    pub cols: u16,
    pub rows: u16,
    /// What ran in it.
    pub title: String,
    pub size_bytes: u64,
    /// Seconds from the terminal's opening to its last recorded event.
    pub duration_s: f64,
    /// Whether the recording stopped at its size limit.
    pub truncated: bool,
}

/// `GET /v1/sandboxes/{id}/recordings`, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RecordingList {
    pub recordings: Vec<Recording>,
}
