//! Calls to the audit endpoints. Entries and heads are decoded straight into
//! `warren_audit` types (the wire format is the export format), so what the
//! verifier checks is exactly what the daemon sent.

use reqwest::Method;
use serde::Deserialize;
use warren_api_types::{AuditEntryList, Timeline};
use warren_audit::{ExportedEntry, SignedTreeHead};
use warren_core::SandboxId;

use super::{Client, ClientError};

/// `GET /v1/audit/heads`, decoded for verification.
#[derive(Debug, Deserialize)]
pub struct Heads {
    /// Ed25519 public key, hex.
    pub public_key: String,
    pub heads: Vec<SignedTreeHead>,
}

fn decode(what: &str, reason: impl std::fmt::Display) -> ClientError {
    ClientError::Decode {
        what: what.to_owned(),
        reason: reason.to_string(),
    }
}

impl Client {
    /// One page of entries matching `filters` (`(name, value)` query pairs).
    pub async fn audit_entries(
        &self,
        filters: &[(&str, String)],
    ) -> Result<AuditEntryList, ClientError> {
        let mut url = self.url(&["audit", "entries"]);
        url.query_pairs_mut().extend_pairs(filters);
        self.json(self.request(Method::GET, url), "listing audit entries")
            .await
    }

    /// The raw JSON-lines export of the entries matching `filters`.
    pub async fn audit_export_bytes(
        &self,
        filters: &[(&str, String)],
    ) -> Result<bytes::Bytes, ClientError> {
        let what = "exporting the audit log";
        let mut url = self.url(&["audit", "entries"]);
        url.query_pairs_mut()
            .append_pair("format", "jsonl")
            .extend_pairs(filters);
        let resp = self.send(self.request(Method::GET, url), what).await?;
        resp.bytes().await.map_err(|e| self.transport(e, what))
    }

    /// The whole log, decoded.
    pub async fn audit_export(&self) -> Result<Vec<ExportedEntry>, ClientError> {
        let bytes = self.audit_export_bytes(&[]).await?;
        bytes
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .enumerate()
            .map(|(n, line)| {
                serde_json::from_slice(line)
                    .map_err(|e| decode("exporting the audit log", format!("line {}: {e}", n + 1)))
            })
            .collect()
    }

    /// Signed heads (every one when `all`) and the public key.
    pub async fn audit_heads(&self, all: bool) -> Result<Heads, ClientError> {
        let mut url = self.url(&["audit", "heads"]);
        if all {
            url.query_pairs_mut().append_pair("all", "true");
        }
        self.json(self.request(Method::GET, url), "reading the signed heads")
            .await
    }

    /// A sandbox's timeline.
    pub async fn timeline(&self, id: &SandboxId) -> Result<Timeline, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "timeline"]);
        self.json(self.request(Method::GET, url), "reading the timeline")
            .await
    }
}
