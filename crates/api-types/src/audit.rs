//! Wire types of the audit endpoints (`/v1/audit/…`, `/v1/sandboxes/{id}/timeline`).
//! Entries and heads use exactly the export format of `docs/audit.md`, so a
//! verifier can hash what it receives.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// One audit log entry (the hashed object).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position in the log, from 0.
    pub index: u64,
    /// Milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
    pub team: String,
    /// Who acted, outermost first, e.g. `["key:abc123def456"]`.
    pub actor: Vec<String>,
    /// Dotted verb: `api.request`, `sandbox.create`, `process.exec`, `file.write` …
    pub action: String,
    /// The object acted on (a sandbox id, a route …).
    pub target: String,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// Further facts; integers, strings, booleans, null, arrays and objects.
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

/// One line of an export: the entry and the leaf hash the log stored for it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditLine {
    pub entry: AuditEntry,
    /// SHA-256(0x00 ‖ canonical JSON of `entry`), hex, as the log stored it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_hash: Option<String>,
}

/// `GET /v1/audit/entries` (JSON form; the JSON-lines form streams
/// [`AuditLine`]s).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AuditEntryList {
    pub entries: Vec<AuditLine>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// A signed tree head: the log's Ed25519-signed size and root.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    pub size: u64,
    /// Hex.
    pub root_hash: String,
    pub timestamp_ms: u64,
    /// Ed25519 over `"warren-audit/sth/v1" ‖ 0x00 ‖ size ‖ timestamp_ms ‖ root`, base64.
    pub signature: String,
}

/// `GET /v1/audit/heads`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AuditHeads {
    /// The Ed25519 public key heads verify with, 64 hex digits.
    pub public_key: String,
    /// The latest head only, or every head (`all=true`), smallest first.
    pub heads: Vec<SignedHead>,
}

/// `GET /v1/audit/entries/{i}/proof`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct InclusionProof {
    pub index: u64,
    /// Leaf hash of the entry, hex.
    pub leaf_hash: String,
    /// The head the proof leads to (the latest signed head).
    pub head: SignedHead,
    /// RFC 9162 inclusion path, hex hashes, leaf side first.
    pub proof: Vec<String>,
}

/// `GET /v1/audit/consistency?from=M&to=N`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// Root of the first `from` entries, hex.
    pub from_root: String,
    /// Root of the first `to` entries, hex.
    pub to_root: String,
    /// RFC 9162 consistency proof, hex hashes.
    pub proof: Vec<String>,
}

/// `GET /v1/sandboxes/{id}/timeline`: a sandbox's life, from the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Timeline {
    pub sandbox: String,
    pub events: Vec<TimelineEvent>,
}

/// One step of a sandbox's life.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TimelineEvent {
    /// Index of the audit entry it comes from.
    pub index: u64,
    /// RFC 3339.
    pub time: String,
    /// Who acted, outermost first.
    pub actor: Vec<String>,
    /// `created`, `command`, `command_ended`, `file_written`, `terminal`, `timeout`, `killed`,
    /// `expired`, `failed` or `request` (a refused or failed API call).
    pub kind: String,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// One readable line, e.g. "ran `ls -l` as user: exit 0 in 12 ms".
    pub summary: String,
    /// Command events: the exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Command events: the duration in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The entry's details.
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}
