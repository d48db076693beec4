//! Inbox rows. Appending reads the sandbox's dedupe key and last sequence
//! number and inserts in one `BEGIN IMMEDIATE` transaction, so concurrent
//! senders get consecutive numbers and a retried one its first event.

use sqlx::SqlitePool;
use warren_core::SandboxId;

use super::codec::{event_from_row, to_i64, to_millis};
use crate::{AppendedEvent, NewEvent, StoreError};

pub(super) async fn append(
    writer: &SqlitePool,
    new: &NewEvent,
    max_events: u64,
) -> Result<AppendedEvent, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    if let Some(key) = &new.dedupe_key {
        let known =
            sqlx::query("SELECT * FROM sandbox_events WHERE sandbox = ?1 AND dedupe_key = ?2")
                .bind(new.sandbox.as_str())
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = known {
            let event = event_from_row(&row)?;
            tx.commit().await?;
            return Ok(AppendedEvent {
                event,
                created: false,
            });
        }
    }
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sandbox_events WHERE sandbox = ?1")
        .bind(new.sandbox.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if u64::try_from(held).unwrap_or(0) >= max_events {
        return Err(StoreError::QuotaExceeded(format!(
            "the inbox of sandbox {} holds its {max_events} events; no more are accepted",
            new.sandbox
        )));
    }
    let row = sqlx::query(
        "INSERT INTO sandbox_events (sandbox, seq, type, source, data, dedupe_key, size, sha256,
                                     received_at)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM sandbox_events WHERE sandbox = ?1),
                 ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         RETURNING *",
    )
    .bind(new.sandbox.as_str())
    .bind(&new.kind)
    .bind(&new.source)
    .bind(&new.data)
    .bind(&new.dedupe_key)
    .bind(to_i64(new.data.len() as u64))
    .bind(&new.sha256)
    .bind(to_millis(new.received_at))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            StoreError::NotFound(format!("sandbox {}", new.sandbox))
        }
        other => other.into(),
    })?;
    let event = event_from_row(&row)?;
    tx.commit().await?;
    Ok(AppendedEvent {
        event,
        created: true,
    })
}

pub(super) async fn list(
    reader: &SqlitePool,
    sandbox: &SandboxId,
    after: u64,
    limit: u32,
) -> Result<Vec<crate::EventRecord>, StoreError> {
    sqlx::query(
        "SELECT * FROM sandbox_events WHERE sandbox = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )
    .bind(sandbox.as_str())
    .bind(to_i64(after))
    .bind(i64::from(limit))
    .fetch_all(reader)
    .await?
    .iter()
    .map(event_from_row)
    .collect()
}
