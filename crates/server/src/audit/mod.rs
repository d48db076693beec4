//! The daemon's audit service: every state-changing act becomes an entry of
//! the tamper-evident log in the store (format and verification:
//! `docs/audit.md`).
//!
//! Parts:
//! - [`Audit`], the handle everything records through ([`Audit::record`]);
//! - one writer task ([`writer`]) that owns the tree's frontier and
//!   group-commits: every request waiting when it starts a transaction goes
//!   into that one transaction (one fsync), and each caller gets its index
//!   once the transaction is committed;
//! - one signer task ([`signer`]) that signs the log's size and root with
//!   the Ed25519 key in `<data_dir>/secrets/audit.key` at least every
//!   second while the log grows, and once more at shutdown;
//! - [`AuditActor`], who acted; [`Event`], what happened.
//!
//! Protocol of a record: the caller builds an [`Event`] after the act (so it
//! can carry the outcome, an exit code, a file's hash) and awaits
//! [`Audit::record`]; the index it gets back is durable. When recording
//! fails the act has already happened: the caller logs the failure with the
//! whole entry at error level ([`Audit::record_done`]) and answers as it
//! would have. Before a state-changing API call runs, the API layer checks
//! that the writer is alive ([`Audit::is_stopped`]) and refuses the call with
//! an internal error otherwise, so nothing happens unrecorded because the
//! writer is gone.
//!
//! Restart safety: the writer reads the frontier back from the store at
//! start; the signer signs whatever part of the log no head covers yet.

mod action;
mod actor;
pub mod requests;
pub mod signer;
pub mod timeline;
pub mod writer;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use warren_audit::{AuditEntry, MerkleLog, Outcome, SigningKey, VerifyingKey};
use warren_core::{SandboxId, WarrenError};
use warren_store::{AuditStoreError, SqliteAudit};

pub use action::Action;
pub use actor::{AuditActor, SYSTEM_TEAM};

/// Why an entry could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The writer task is gone (shutdown, or it failed to start).
    #[error("the audit log writer has stopped")]
    Stopped,
    /// The entry has no canonical encoding (a bug in the recording code).
    #[error("audit entry cannot be hashed")]
    Entry(#[source] warren_audit::canonical::CanonicalError),
    /// The store refused or failed the transaction holding the entry.
    #[error("appending to the audit log failed")]
    Append(#[source] Arc<AuditStoreError>),
    /// Opening the log at start-up failed.
    #[error("cannot open the audit log")]
    Open(#[source] warren_audit::LogError),
    /// Reading the audit tables failed.
    #[error("cannot read the audit log")]
    Read(#[source] AuditStoreError),
}

impl From<AuditError> for WarrenError {
    fn from(e: AuditError) -> Self {
        WarrenError::internal(warren_core::error::chain(&e))
    }
}

/// What happened, to what, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub action: Action,
    /// The object acted on.
    pub target: String,
    /// The sandbox the event is about, if any (timeline, filters).
    pub sandbox: Option<SandboxId>,
    pub outcome: Outcome,
    pub details: Map<String, Value>,
}

impl Event {
    /// A successful event about `target` that concerns no sandbox.
    pub fn new(action: Action, target: String) -> Self {
        Self {
            action,
            target,
            sandbox: None,
            outcome: Outcome::Ok,
            details: Map::new(),
        }
    }

    /// An event about sandbox `id`, which is also its target.
    pub fn sandbox(action: Action, id: &SandboxId, outcome: Outcome) -> Self {
        Self {
            action,
            target: id.to_string(),
            sandbox: Some(id.clone()),
            outcome,
            details: Map::new(),
        }
    }

    /// Adds one detail.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// One request to the writer.
pub(crate) struct Pending {
    pub entry: AuditEntry,
    pub sandbox: Option<String>,
    pub reply: oneshot::Sender<Result<u64, AuditError>>,
}

/// The handle to the audit service. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    tx: mpsc::Sender<Pending>,
    store: SqliteAudit,
    public_key: VerifyingKey,
    /// Seconds from handing an entry to the writer to its commit.
    append_seconds: Histogram,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Requests the writer may queue before callers wait to hand theirs over.
const QUEUE: usize = 8192;

/// The running signer; [`AuditTasks::stop`] signs what is committed and
/// ends it. The writer ends when the last [`Audit`] handle is dropped.
pub struct AuditTasks {
    stop: watch::Sender<bool>,
    signer: JoinHandle<()>,
}

impl AuditTasks {
    /// Signs the committed log a last time and stops signing.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.signer.await;
    }
}

impl Audit {
    /// Opens the log kept in `store` and starts its writer and signer.
    pub async fn start(
        store: SqliteAudit,
        key: SigningKey,
    ) -> Result<(Self, AuditTasks), AuditError> {
        let frontier = writer::reload(&store).await?;
        let latest = store.latest_head().await.map_err(AuditError::Read)?;
        if let Some(head) = &latest {
            check_latest_head(&store, head, &key.verifying_key()).await;
        }
        let signed = latest.map_or(0, |h| h.size.min(frontier.len()));
        let (tx, requests) = mpsc::channel(QUEUE);
        let (committed_tx, committed) = watch::channel((frontier.len(), frontier.root()));
        tokio::spawn(writer::run(store.clone(), frontier, requests, committed_tx));
        let (stop, stop_rx) = watch::channel(false);
        let public_key = key.verifying_key();
        let signer = tokio::spawn(signer::run(store.clone(), key, signed, committed, stop_rx));
        let audit = Self {
            tx,
            store,
            public_key,
            // 100 µs to ~6.5 s.
            append_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 17)),
        };
        Ok((audit, AuditTasks { stop, signer }))
    }

    /// Appends `event` by `actor`; returns its index once it is committed.
    pub async fn record(&self, actor: &AuditActor, event: Event) -> Result<u64, AuditError> {
        let entry = AuditEntry {
            index: 0,
            time_ms: now_ms(),
            team: actor.team.clone(),
            actor: actor.chain.clone(),
            action: event.action.as_str().to_owned(),
            target: event.target,
            outcome: event.outcome,
            details: event.details,
        };
        let started = Instant::now();
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            entry,
            sandbox: event.sandbox.map(|s| s.to_string()),
            reply,
        };
        self.tx
            .send(pending)
            .await
            .map_err(|_| AuditError::Stopped)?;
        let index = answer.await.map_err(|_| AuditError::Stopped)??;
        self.append_seconds.observe(started.elapsed().as_secs_f64());
        Ok(index)
    }

    /// How long appends waited for their commit (for `/metrics`).
    pub fn append_latency(&self) -> Histogram {
        self.append_seconds.clone()
    }

    /// Records an act that has already happened: a failure is logged at
    /// error level with the whole event, never returned.
    pub async fn record_done(&self, actor: &AuditActor, event: Event) -> Option<u64> {
        let described = format!("{event:?} by {actor:?}");
        match self.record(actor, event).await {
            Ok(index) => Some(index),
            Err(e) => {
                tracing::error!(
                    error = %warren_core::error::chain(&e),
                    event = %described,
                    "an audited act happened but could not be recorded"
                );
                None
            }
        }
    }

    /// Whether the writer is gone; nothing new can be recorded.
    pub fn is_stopped(&self) -> bool {
        self.tx.is_closed()
    }

    /// The audit tables, for queries and proofs.
    pub fn store(&self) -> &SqliteAudit {
        &self.store
    }

    /// The key signed tree heads verify with.
    pub fn public_key(&self) -> VerifyingKey {
        self.public_key
    }
}

/// Says loudly at start-up when the stored log no longer matches the last
/// head it signed (rolled back, edited, or signed with another key). The
/// daemon keeps running; `warren audit verify` reports the details.
async fn check_latest_head(
    store: &SqliteAudit,
    head: &warren_audit::SignedTreeHead,
    key: &VerifyingKey,
) {
    if let Err(e) = head.verify(key) {
        tracing::error!(error = %e, "the latest signed audit head does not verify with this daemon's key");
        return;
    }
    let matches = async {
        let log = MerkleLog::open(store.clone()).await.ok()?;
        if head.size > log.size() {
            return Some(false);
        }
        Some(log.root(head.size).await.ok()? == head.root_hash)
    };
    if matches.await == Some(false) {
        tracing::error!(
            head_size = head.size,
            "the audit log does not match its latest signed head: it was rolled back or edited; run `warren audit verify`"
        );
    }
}
