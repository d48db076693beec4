//! Network policies of sandboxes and their network events.
//!
//! Events are appended in batches in one transaction; after a batch each
//! sandbox it touched is trimmed to its newest
//! [`crate::MAX_NETWORK_EVENTS`] rows. Reads page newest first by `seq`.

use std::collections::BTreeSet;

use sqlx::SqlitePool;
use warren_core::SandboxId;
use warren_core::network::NetworkPolicy;

use super::codec::{encode_network, net_event_from_row, sandbox_from_row, to_i64, to_millis};
use crate::{MAX_NETWORK_EVENTS, NetEventRecord, NewNetEvent, SandboxRecord, StoreError};

pub(super) async fn set_policy(
    writer: &SqlitePool,
    id: &SandboxId,
    policy: &NetworkPolicy,
) -> Result<SandboxRecord, StoreError> {
    let row = sqlx::query("UPDATE sandboxes SET network = ?1 WHERE id = ?2 RETURNING *")
        .bind(encode_network(policy)?)
        .bind(id.as_str())
        .fetch_optional(writer)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("sandbox {id}")))?;
    sandbox_from_row(&row)
}

pub(super) async fn append(writer: &SqlitePool, events: &[NewNetEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut touched = BTreeSet::new();
    for e in events {
        sqlx::query(
            "INSERT INTO network_events
                 (sandbox_id, at, kind, dest, port, name, verdict, reason, bytes_out, bytes_in)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(e.sandbox_id.as_str())
        .bind(to_millis(e.at))
        .bind(&e.kind)
        .bind(e.dest.map(|d| d.to_string()))
        .bind(e.port.map(i64::from))
        .bind(&e.name)
        .bind(&e.verdict)
        .bind(&e.reason)
        .bind(to_i64(e.bytes_out))
        .bind(to_i64(e.bytes_in))
        .execute(&mut *tx)
        .await?;
        touched.insert(e.sandbox_id.as_str());
    }
    for id in touched {
        sqlx::query(
            "DELETE FROM network_events WHERE sandbox_id = ?1 AND seq <= (
                 SELECT seq FROM network_events WHERE sandbox_id = ?1
                 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        )
        .bind(id)
        .bind(MAX_NETWORK_EVENTS as i64)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list(
    reader: &SqlitePool,
    id: &SandboxId,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<NetEventRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM network_events
         WHERE sandbox_id = ?1 AND (?2 IS NULL OR seq < ?2)
         ORDER BY seq DESC LIMIT ?3",
    )
    .bind(id.as_str())
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(reader)
    .await?;
    rows.iter().map(net_event_from_row).collect()
}
