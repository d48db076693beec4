//! The audit log's tables on SQLite ([`SqliteAudit`]): entries, tree nodes,
//! the size and the signed tree heads (`migrations/sqlite/0003_audit.sql`).
//!
//! Writes run on the store's single writer connection inside
//! `BEGIN IMMEDIATE`: [`SqliteAudit::append`] stores a whole batch of
//! entries, their nodes and the new size in one transaction (one fsync for
//! the batch: this is what lets the daemon's writer group-commit), and
//! refuses a batch that does not start at the stored size. The leaf hash of
//! entry `i` is node `(0, i)`; an export reads it from there, so an edit of
//! an entry row alone shows up as a leaf hash mismatch at its index.
//!
//! [`SqliteAudit`] is also a [`NodeStore`], so `warren_audit::MerkleLog`
//! answers roots and proofs from the database. Its `append` stores hashes
//! only (no entry row); the daemon appends through [`SqliteAudit::append`].

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use warren_audit::store::check_append;
use warren_audit::{AuditEntry, ExportedEntry, Hash, Node, NodeStore, Outcome, SignedTreeHead};

use super::SqliteStore;
use crate::audit::{AuditAppend, AuditFilter, AuditStoreError};

const ENTRIES: &str = "audit_entries";
const HEADS: &str = "audit_heads";

/// The audit tables of a [`SqliteStore`]. Cheap to clone: clones share the
/// store's connections.
#[derive(Debug, Clone)]
pub struct SqliteAudit {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// The audit log kept in this store's database.
    pub fn audit(&self) -> SqliteAudit {
        SqliteAudit {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
        }
    }
}

fn to_i64(what: &'static str, value: u64) -> Result<i64, AuditStoreError> {
    i64::try_from(value).map_err(|_| AuditStoreError::OutOfRange { what, value })
}

/// A filter bound as SQLite compares it. No stored index or time exceeds
/// `i64::MAX`, so a larger bound (a caller's `after=2^64-2`) selects
/// exactly what `i64::MAX` does instead of failing the query.
fn query_bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn encode<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String, AuditStoreError> {
    serde_json::to_string(value).map_err(|source| AuditStoreError::Encode { what, source })
}

async fn stored_size(tx: &mut Transaction<'_, Sqlite>) -> Result<u64, AuditStoreError> {
    let size: i64 = sqlx::query_scalar("SELECT size FROM audit_size WHERE id = 0")
        .fetch_one(&mut **tx)
        .await?;
    Ok(size as u64)
}

/// Rows per multi-row INSERT (SQLite binds at most 32766 parameters).
const ROWS_PER_INSERT: usize = 1000;

/// Inserts `nodes` (already checked) with multi-row INSERTs.
async fn insert_nodes(
    tx: &mut Transaction<'_, Sqlite>,
    nodes: &[Node],
) -> Result<(), AuditStoreError> {
    for chunk in nodes.chunks(ROWS_PER_INSERT) {
        let rows = chunk
            .iter()
            .map(|n| {
                Ok((
                    i64::from(n.level),
                    to_i64("node index", n.index)?,
                    n.hash.0.to_vec(),
                ))
            })
            .collect::<Result<Vec<_>, AuditStoreError>>()?;
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO audit_nodes (level, idx, hash) ");
        q.push_values(rows, |mut row, (level, index, hash)| {
            row.push_bind(level).push_bind(index).push_bind(hash);
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// One `audit_entries` row, encoded.
type EntryRow = (
    i64,
    i64,
    String,
    Option<String>,
    String,
    String,
    String,
    &'static str,
    String,
);

fn entry_row(index: u64, item: &AuditAppend) -> Result<EntryRow, AuditStoreError> {
    let entry = &item.entry;
    if entry.index != index {
        return Err(AuditStoreError::BadIndex {
            expected: index,
            found: entry.index,
        });
    }
    check_append(index, &item.nodes).map_err(AuditStoreError::BadAppend)?;
    Ok((
        to_i64("entry index", index)?,
        to_i64("entry time", entry.time_ms)?,
        entry.team.clone(),
        item.sandbox.clone(),
        encode("actor chain", &entry.actor)?,
        entry.action.clone(),
        entry.target.clone(),
        entry.outcome.as_str(),
        encode("details", &entry.details)?,
    ))
}

/// Records the new size inside the append's transaction.
async fn grow(
    tx: &mut Transaction<'_, Sqlite>,
    old_size: u64,
    new_size: u64,
) -> Result<(), AuditStoreError> {
    sqlx::query("UPDATE audit_size SET size = ?1 WHERE id = 0")
        .bind(to_i64("log size", new_size)?)
        .execute(&mut **tx)
        .await?;
    tracing::trace!(old_size, new_size, "audit log grew");
    Ok(())
}

/// Opens a write transaction, failing unless the log has `old_size` entries.
async fn begin_at(
    writer: &SqlitePool,
    old_size: u64,
) -> Result<Transaction<'static, Sqlite>, AuditStoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let actual = stored_size(&mut tx).await?;
    if actual != old_size {
        return Err(AuditStoreError::Conflict {
            expected: old_size,
            actual,
        });
    }
    Ok(tx)
}

impl SqliteAudit {
    /// Appends `batch` as entries `old_size..old_size + batch.len()`, with
    /// their nodes and the new size, in one transaction.
    pub async fn append(
        &self,
        old_size: u64,
        batch: &[AuditAppend],
    ) -> Result<(), AuditStoreError> {
        let rows = (old_size..)
            .zip(batch)
            .map(|(index, item)| entry_row(index, item))
            .collect::<Result<Vec<_>, _>>()?;
        let nodes: Vec<Node> = batch.iter().flat_map(|i| i.nodes.iter().copied()).collect();
        let mut tx = begin_at(&self.writer, old_size).await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO audit_entries
                     (idx, time_ms, team, sandbox, actor, action, target, outcome, details) ",
            );
            q.push_values(chunk.iter().cloned(), |mut row, e| {
                row.push_bind(e.0)
                    .push_bind(e.1)
                    .push_bind(e.2)
                    .push_bind(e.3)
                    .push_bind(e.4)
                    .push_bind(e.5)
                    .push_bind(e.6)
                    .push_bind(e.7)
                    .push_bind(e.8);
            });
            q.build().execute(&mut *tx).await?;
        }
        insert_nodes(&mut tx, &nodes).await?;
        grow(&mut tx, old_size, old_size + batch.len() as u64).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Number of entries.
    pub async fn size(&self) -> Result<u64, AuditStoreError> {
        let size: i64 = sqlx::query_scalar("SELECT size FROM audit_size WHERE id = 0")
            .fetch_one(&self.reader)
            .await?;
        Ok(size as u64)
    }

    /// Entries matching `filter`, in index order, each with the leaf hash
    /// the tree holds for it.
    pub async fn entries(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<ExportedEntry>, AuditStoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT e.*, n.hash AS leaf_hash FROM audit_entries e
             LEFT JOIN audit_nodes n ON n.level = 0 AND n.idx = e.idx WHERE 1 = 1",
        );
        if let Some(team) = &filter.team {
            q.push(" AND e.team = ").push_bind(team.clone());
        }
        if let Some(sandbox) = &filter.sandbox {
            q.push(" AND e.sandbox = ").push_bind(sandbox.clone());
        }
        if let Some(actor) = &filter.actor {
            q.push(" AND EXISTS (SELECT 1 FROM json_each(e.actor) WHERE value = ")
                .push_bind(actor.clone())
                .push(")");
        }
        if let Some(action) = &filter.action {
            q.push(" AND e.action = ").push_bind(action.clone());
        }
        if let Some(since) = filter.since_ms {
            q.push(" AND e.time_ms >= ").push_bind(query_bound(since));
        }
        if let Some(until) = filter.until_ms {
            q.push(" AND e.time_ms < ").push_bind(query_bound(until));
        }
        if let Some(after) = filter.after {
            q.push(" AND e.idx > ").push_bind(query_bound(after));
        }
        q.push(" ORDER BY e.idx LIMIT ")
            .push_bind(query_bound(filter.limit));
        q.build()
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(entry_from_row)
            .collect()
    }

    /// Stores a signed head; a head of a size already signed is kept as it was.
    pub async fn insert_head(&self, head: &SignedTreeHead) -> Result<(), AuditStoreError> {
        sqlx::query(
            "INSERT INTO audit_heads (size, timestamp_ms, root_hash, signature)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64("head size", head.size)?)
        .bind(to_i64("head time", head.timestamp_ms)?)
        .bind(head.root_hash.as_bytes().as_slice())
        .bind(&head.signature)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The head of the largest size, if any was signed.
    pub async fn latest_head(&self) -> Result<Option<SignedTreeHead>, AuditStoreError> {
        sqlx::query("SELECT * FROM audit_heads ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.reader)
            .await?
            .map(|row| head_from_row(&row))
            .transpose()
    }

    /// Every signed head, smallest size first.
    pub async fn heads(&self) -> Result<Vec<SignedTreeHead>, AuditStoreError> {
        sqlx::query("SELECT * FROM audit_heads ORDER BY size")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(head_from_row)
            .collect()
    }
}

fn corrupt(table: &'static str, key: i64, detail: impl std::fmt::Display) -> AuditStoreError {
    AuditStoreError::Corrupt {
        table,
        key: key as u64,
        detail: detail.to_string(),
    }
}

fn entry_from_row(row: &SqliteRow) -> Result<ExportedEntry, AuditStoreError> {
    let idx: i64 = row.try_get("idx")?;
    let bad = |detail: String| corrupt(ENTRIES, idx, detail);
    let actor: String = row.try_get("actor")?;
    let actor: Vec<String> =
        serde_json::from_str(&actor).map_err(|e| bad(format!("actor: {e}")))?;
    let details: String = row.try_get("details")?;
    let details: Map<String, Value> =
        serde_json::from_str(&details).map_err(|e| bad(format!("details: {e}")))?;
    let outcome: String = row.try_get("outcome")?;
    let outcome: Outcome = serde_json::from_value(Value::String(outcome.clone()))
        .map_err(|_| bad(format!("unknown outcome {outcome:?}")))?;
    let time_ms: i64 = row.try_get("time_ms")?;
    let leaf: Option<Vec<u8>> = row.try_get("leaf_hash")?;
    let leaf_hash = leaf
        .map(|b| Hash::from_slice(&b).map_err(|e| bad(format!("leaf hash: {e}"))))
        .transpose()?;
    Ok(ExportedEntry {
        entry: AuditEntry {
            index: idx as u64,
            time_ms: u64::try_from(time_ms).map_err(|_| bad(format!("time {time_ms}")))?,
            team: row.try_get("team")?,
            actor,
            action: row.try_get("action")?,
            target: row.try_get("target")?,
            outcome,
            details,
        },
        leaf_hash,
    })
}

fn head_from_row(row: &SqliteRow) -> Result<SignedTreeHead, AuditStoreError> {
    let size: i64 = row.try_get("size")?;
    let root: Vec<u8> = row.try_get("root_hash")?;
    let timestamp_ms: i64 = row.try_get("timestamp_ms")?;
    Ok(SignedTreeHead {
        size: size as u64,
        root_hash: Hash::from_slice(&root).map_err(|e| corrupt(HEADS, size, e))?,
        timestamp_ms: timestamp_ms as u64,
        signature: row.try_get("signature")?,
    })
}

#[async_trait]
impl NodeStore for SqliteAudit {
    async fn size(&self) -> Result<u64, warren_audit::StoreError> {
        Ok(SqliteAudit::size(self).await?)
    }

    async fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, warren_audit::StoreError> {
        let Ok(index) = i64::try_from(index) else {
            return Ok(None);
        };
        let hash: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT hash FROM audit_nodes WHERE level = ?1 AND idx = ?2")
                .bind(i64::from(level))
                .bind(index)
                .fetch_optional(&self.reader)
                .await
                .map_err(AuditStoreError::from)?;
        hash.map(|b| Hash::from_slice(&b).map_err(|e| corrupt("audit_nodes", index, e).into()))
            .transpose()
    }

    /// Stores hashes only; see the module docs.
    async fn append(&self, old_size: u64, nodes: &[Node]) -> Result<(), warren_audit::StoreError> {
        let run = async {
            check_append(old_size, nodes).map_err(AuditStoreError::BadAppend)?;
            let mut tx = begin_at(&self.writer, old_size).await?;
            insert_nodes(&mut tx, nodes).await?;
            grow(&mut tx, old_size, old_size + 1).await?;
            tx.commit().await?;
            Ok::<_, AuditStoreError>(())
        };
        Ok(run.await?)
    }
}
