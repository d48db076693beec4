//! Inbox rows. Appending finds a retry by its dedupe key, bumps the inbox's
//! `last_seq` and inserts in one `BEGIN IMMEDIATE` transaction, so
//! concurrent senders get consecutive numbers and a retried one its first
//! event. Acknowledgement only moves `acked_seq` forward.

use sqlx::{SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use warren_core::SandboxId;
use warren_core::inbox::InboxSettings;

use super::codec::{encode_inbox, event_from_row, inbox_from_row, to_i64, to_millis};
use crate::{AppendedEvent, EventRecord, InboxRecord, NewEvent, StoreError};

/// Creates the inbox of a sandbox being inserted, in its transaction.
pub(super) async fn create_inbox(
    tx: &mut SqliteConnection,
    sandbox: &SandboxId,
    settings: &InboxSettings,
) -> Result<(), StoreError> {
    let (wake_on, handler) = encode_inbox(settings)?;
    sqlx::query("INSERT INTO sandbox_inboxes (sandbox, wake_on, handler) VALUES (?1, ?2, ?3)")
        .bind(sandbox.as_str())
        .bind(wake_on)
        .bind(handler)
        .execute(tx)
        .await?;
    Ok(())
}

async fn inbox_in(
    conn: &mut SqliteConnection,
    sandbox: &SandboxId,
) -> Result<InboxRecord, StoreError> {
    sqlx::query("SELECT * FROM sandbox_inboxes WHERE sandbox = ?1")
        .bind(sandbox.as_str())
        .fetch_optional(conn)
        .await?
        .map(|row| inbox_from_row(&row))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("sandbox {sandbox}")))
}

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
    let inbox = inbox_in(&mut tx, &new.sandbox).await?;
    // Events are pruned oldest first, so the ones held are a run of
    // numbers ending at `last_seq`.
    let oldest: Option<i64> =
        sqlx::query_scalar("SELECT MIN(seq) FROM sandbox_events WHERE sandbox = ?1")
            .bind(new.sandbox.as_str())
            .fetch_one(&mut *tx)
            .await?;
    let held = oldest.map_or(0, |o| inbox.last_seq + 1 - u64::try_from(o).unwrap_or(0));
    if held >= max_events {
        return Err(StoreError::QuotaExceeded(format!(
            "the inbox of sandbox {} holds its {max_events} events; no more are accepted until it acknowledges some",
            new.sandbox
        )));
    }
    let seq = inbox.last_seq + 1;
    sqlx::query("UPDATE sandbox_inboxes SET last_seq = ?2 WHERE sandbox = ?1")
        .bind(new.sandbox.as_str())
        .bind(to_i64(seq))
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(
        "INSERT INTO sandbox_events (sandbox, seq, type, source, data, dedupe_key, size, sha256,
                                     received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         RETURNING *",
    )
    .bind(new.sandbox.as_str())
    .bind(to_i64(seq))
    .bind(&new.kind)
    .bind(&new.source)
    .bind(&new.data)
    .bind(&new.dedupe_key)
    .bind(to_i64(new.data.len() as u64))
    .bind(&new.sha256)
    .bind(to_millis(new.received_at))
    .fetch_one(&mut *tx)
    .await?;
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
) -> Result<Vec<EventRecord>, StoreError> {
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

pub(super) async fn inbox(
    reader: &SqlitePool,
    sandbox: &SandboxId,
) -> Result<Option<InboxRecord>, StoreError> {
    let mut conn = reader.acquire().await?;
    match inbox_in(&mut conn, sandbox).await {
        Ok(inbox) => Ok(Some(inbox)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) async fn set_settings(
    writer: &SqlitePool,
    sandbox: &SandboxId,
    settings: &InboxSettings,
) -> Result<InboxRecord, StoreError> {
    let (wake_on, handler) = encode_inbox(settings)?;
    sqlx::query(
        "UPDATE sandbox_inboxes SET wake_on = ?2, handler = ?3 WHERE sandbox = ?1 RETURNING *",
    )
    .bind(sandbox.as_str())
    .bind(wake_on)
    .bind(handler)
    .fetch_optional(writer)
    .await?
    .map(|row| inbox_from_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::NotFound(format!("sandbox {sandbox}")))
}

pub(super) async fn take(
    writer: &SqlitePool,
    sandbox: &SandboxId,
    after: u64,
    limit: u32,
    now: OffsetDateTime,
) -> Result<Vec<EventRecord>, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let inbox = inbox_in(&mut tx, sandbox).await?;
    let from = if after > inbox.last_seq {
        inbox.acked_seq
    } else {
        after.max(inbox.acked_seq)
    };
    let rows = sqlx::query(
        "SELECT * FROM sandbox_events WHERE sandbox = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )
    .bind(sandbox.as_str())
    .bind(to_i64(from))
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    let mut events: Vec<EventRecord> = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
    if let Some(last) = events.last() {
        sqlx::query(
            "UPDATE sandbox_events SET delivered_at = ?4
              WHERE sandbox = ?1 AND seq > ?2 AND seq <= ?3 AND delivered_at IS NULL",
        )
        .bind(sandbox.as_str())
        .bind(to_i64(from))
        .bind(to_i64(last.seq))
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await?;
        for e in events.iter_mut().filter(|e| e.delivered_at.is_none()) {
            e.delivered_at = Some(now);
        }
    }
    tx.commit().await?;
    Ok(events)
}

pub(super) async fn ack(
    writer: &SqlitePool,
    sandbox: &SandboxId,
    seq: u64,
    now: OffsetDateTime,
) -> Result<(InboxRecord, InboxRecord), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let before = inbox_in(&mut tx, sandbox).await?;
    if seq > before.last_seq {
        return Err(StoreError::InvalidSeq {
            seq,
            last_seq: before.last_seq,
        });
    }
    if seq <= before.acked_seq {
        tx.commit().await?;
        return Ok((before.clone(), before));
    }
    sqlx::query(
        "UPDATE sandbox_events SET acked_at = ?4
          WHERE sandbox = ?1 AND seq > ?2 AND seq <= ?3 AND acked_at IS NULL",
    )
    .bind(sandbox.as_str())
    .bind(to_i64(before.acked_seq))
    .bind(to_i64(seq))
    .bind(to_millis(now))
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE sandbox_inboxes SET acked_seq = ?2 WHERE sandbox = ?1")
        .bind(sandbox.as_str())
        .bind(to_i64(seq))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let after = InboxRecord {
        acked_seq: seq,
        ..before.clone()
    };
    Ok((before, after))
}

pub(super) async fn fork(
    writer: &SqlitePool,
    parent: &SandboxId,
    branch: &SandboxId,
    upto: u64,
) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let from = inbox_in(&mut tx, parent).await?;
    let upto = upto.min(from.last_seq);
    let acked = from.acked_seq.min(upto);
    let (wake_on, handler) = encode_inbox(&from.settings)?;
    let updated = sqlx::query(
        "UPDATE sandbox_inboxes SET last_seq = ?2, acked_seq = ?3, wake_on = ?4, handler = ?5
          WHERE sandbox = ?1",
    )
    .bind(branch.as_str())
    .bind(to_i64(upto))
    .bind(to_i64(acked))
    .bind(wake_on)
    .bind(handler)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("sandbox {branch}")));
    }
    sqlx::query(
        "INSERT INTO sandbox_events (sandbox, seq, type, source, data, dedupe_key, size, sha256,
                                     received_at)
         SELECT ?2, seq, type, source, data, dedupe_key, size, sha256, received_at
           FROM sandbox_events WHERE sandbox = ?1 AND seq > ?3 AND seq <= ?4",
    )
    .bind(parent.as_str())
    .bind(branch.as_str())
    .bind(to_i64(acked))
    .bind(to_i64(upto))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn prune(writer: &SqlitePool, before: OffsetDateTime) -> Result<u64, StoreError> {
    let done =
        sqlx::query("DELETE FROM sandbox_events WHERE acked_at IS NOT NULL AND acked_at < ?1")
            .bind(to_millis(before))
            .execute(writer)
            .await?;
    Ok(done.rows_affected())
}

pub(super) async fn pending_handlers(reader: &SqlitePool) -> Result<Vec<InboxRecord>, StoreError> {
    sqlx::query(
        "SELECT i.* FROM sandbox_inboxes i JOIN sandboxes s ON s.id = i.sandbox
          WHERE s.state = 'running' AND i.handler IS NOT NULL AND i.last_seq > i.acked_seq",
    )
    .fetch_all(reader)
    .await?
    .iter()
    .map(inbox_from_row)
    .collect()
}
