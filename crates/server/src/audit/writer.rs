//! The single writer of the audit log, with group commit.
//!
//! The writer owns the tree's [`Frontier`] (the peaks of the log; exactly
//! the hashes an append needs). Loop: wait for one request, take every other
//! request already queued (up to [`MAX_BATCH`]), give them the next indexes,
//! hash them and their tree nodes on a copy of the frontier, and store the
//! whole batch in one transaction. Only after the commit does each caller
//! get its index and the frontier move on; if the transaction fails every
//! caller of the batch gets the error and the frontier is read back from the
//! store. While one transaction commits, new requests queue: the busier the
//! log, the larger the batches, so one fsync serves many appends.
//!
//! After each commit the new size and root are published on a watch
//! channel for the signer.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use warren_audit::{Frontier, Hash, MerkleLog};
use warren_store::{AuditAppend, SqliteAudit};

use super::{AuditError, Pending};

/// Most entries in one transaction.
pub const MAX_BATCH: usize = 1024;

/// Size and root of the log as last committed.
pub type Committed = (u64, Hash);

/// Runs until every [`super::Audit`] handle is dropped.
pub(crate) async fn run(
    store: SqliteAudit,
    mut frontier: Frontier,
    mut requests: mpsc::Receiver<Pending>,
    committed: watch::Sender<Committed>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut next = frontier.clone();
        let start = next.len();
        let mut items = Vec::with_capacity(batch.len());
        let mut replies: Vec<oneshot::Sender<Result<u64, AuditError>>> =
            Vec::with_capacity(batch.len());
        for Pending {
            mut entry,
            sandbox,
            reply,
        } in batch.drain(..)
        {
            entry.index = next.len();
            match entry.leaf_hash() {
                Ok(leaf) => {
                    let nodes = next.push_nodes(leaf);
                    items.push(AuditAppend {
                        entry,
                        sandbox,
                        nodes,
                    });
                    replies.push(reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(AuditError::Entry(e)));
                }
            }
        }
        if items.is_empty() {
            continue;
        }
        match store.append(start, &items).await {
            Ok(()) => {
                frontier = next;
                for (index, reply) in (start..).zip(replies) {
                    let _ = reply.send(Ok(index));
                }
                committed.send_replace((frontier.len(), frontier.root()));
            }
            Err(e) => {
                let e = Arc::new(e);
                tracing::error!(error = %warren_core::error::chain(&*e), entries = items.len(), "audit append failed");
                for reply in replies {
                    let _ = reply.send(Err(AuditError::Append(e.clone())));
                }
                match reload(&store).await {
                    Ok(f) => frontier = f,
                    Err(e) => {
                        tracing::error!(error = %warren_core::error::chain(&e), "cannot read the audit log back")
                    }
                }
            }
        }
    }
    tracing::debug!("audit writer stopped");
}

/// The frontier of the log as stored.
pub(crate) async fn reload(store: &SqliteAudit) -> Result<Frontier, AuditError> {
    let log = MerkleLog::open(store.clone())
        .await
        .map_err(AuditError::Open)?;
    log.frontier().await.map_err(AuditError::Open)
}
