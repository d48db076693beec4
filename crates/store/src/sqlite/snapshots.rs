//! Snapshot rows, and the sandbox columns that pause/resume, idle handling
//! and lineage use.
//!
//! A pause is committed in one `BEGIN IMMEDIATE` transaction: insert the
//! image's row, move the sandbox from pausing to paused and point its
//! `paused_snapshot` at the row. The caller renamed the image to its final
//! name before, so a crash leaves either a pausing sandbox (and an image no
//! row names, which the daemon deletes) or a paused one whose image is
//! complete.

use sqlx::SqlitePool;
use time::OffsetDateTime;
use warren_core::{PauseMode, SandboxId, SandboxState, SnapshotId};

use super::codec::{
    encode_map, encode_network, parse_state, sandbox_from_row, snapshot_from_row, to_i64, to_millis,
};
use super::sandboxes::parse_ids;
use crate::{NewSnapshot, SandboxRecord, SnapshotRecord, StoreError};

async fn insert(
    tx: &mut sqlx::SqliteConnection,
    s: NewSnapshot,
) -> Result<SnapshotRecord, StoreError> {
    if let Some(name) = &s.name {
        let taken = sqlx::query(
            "SELECT 1 FROM snapshots
             WHERE sandbox_id = ?1 AND name = ?2 AND deleted_at IS NULL",
        )
        .bind(s.sandbox_id.as_str())
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists(format!(
                "snapshot '{name}' of sandbox {}",
                s.sandbox_id
            )));
        }
    }
    let row = sqlx::query(
        "INSERT INTO snapshots (id, sandbox_id, kind, name, template, cpus, memory_mb, pids,
                                env, parent_snapshot, size_bytes, created_by, created_at, team,
                                network, disk_mb, template_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         RETURNING *",
    )
    .bind(s.id.as_str())
    .bind(s.sandbox_id.as_str())
    .bind(s.kind.as_str())
    .bind(&s.name)
    .bind(&s.template)
    .bind(i64::from(s.limits.cpus))
    .bind(i64::from(s.limits.memory_mb))
    .bind(i64::from(s.limits.pids))
    .bind(encode_map("env", &s.env)?)
    .bind(s.parent_snapshot.as_ref().map(|p| p.as_str().to_owned()))
    .bind(to_i64(s.size_bytes))
    .bind(s.created_by.as_str())
    .bind(to_millis(OffsetDateTime::now_utc()))
    .bind(s.team.as_str())
    .bind(encode_network(&s.network)?)
    .bind(i64::from(s.limits.disk_mb))
    .bind(s.template_version.as_deref())
    .fetch_one(&mut *tx)
    .await?;
    snapshot_from_row(&row)
}

pub(super) async fn insert_one(
    writer: &SqlitePool,
    s: NewSnapshot,
) -> Result<SnapshotRecord, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let record = insert(&mut tx, s).await?;
    tx.commit().await?;
    Ok(record)
}

/// The sandbox's actual state after a lost compare-and-set, as an error.
async fn lost(
    tx: &mut sqlx::SqliteConnection,
    id: &SandboxId,
    expected: SandboxState,
) -> StoreError {
    let actual: Result<Option<String>, _> =
        sqlx::query_scalar("SELECT state FROM sandboxes WHERE id = ?1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await;
    match actual {
        Err(e) => e.into(),
        Ok(None) => StoreError::NotFound(format!("sandbox {id}")),
        Ok(Some(actual)) => match parse_state(id, &actual) {
            Ok(actual) => StoreError::Conflict { expected, actual },
            Err(e) => e,
        },
    }
}

pub(super) async fn commit_pause(
    writer: &SqlitePool,
    id: &SandboxId,
    s: NewSnapshot,
    mode: PauseMode,
) -> Result<SandboxRecord, StoreError> {
    let now = to_millis(OffsetDateTime::now_utc());
    let snapshot = s.id.clone();
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let updated = sqlx::query(
        "UPDATE sandboxes SET state = 'paused', state_changed_at = ?1, paused_snapshot = ?2,
                              pause_mode = ?4
         WHERE id = ?3 AND state = 'pausing'
         RETURNING *",
    )
    .bind(now)
    .bind(snapshot.as_str())
    .bind(id.as_str())
    .bind(mode.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = updated else {
        return Err(lost(&mut tx, id, SandboxState::Pausing).await);
    };
    let record = sandbox_from_row(&row)?;
    insert(&mut tx, s).await?;
    tx.commit().await?;
    Ok(record)
}

pub(super) async fn finish_resume(
    writer: &SqlitePool,
    id: &SandboxId,
) -> Result<SandboxRecord, StoreError> {
    let now = to_millis(OffsetDateTime::now_utc());
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let updated = sqlx::query(
        "UPDATE sandboxes SET state = 'running', state_changed_at = ?1, last_activity = ?1,
                              expires_at = ?1 + timeout_s * 1000, pause_mode = NULL
         WHERE id = ?2 AND state = 'resuming'
         RETURNING *",
    )
    .bind(now)
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = updated else {
        return Err(lost(&mut tx, id, SandboxState::Resuming).await);
    };
    let record = sandbox_from_row(&row)?;
    tx.commit().await?;
    Ok(record)
}

pub(super) async fn get(
    reader: &SqlitePool,
    id: &SnapshotId,
) -> Result<Option<SnapshotRecord>, StoreError> {
    sqlx::query("SELECT * FROM snapshots WHERE id = ?1")
        .bind(id.as_str())
        .fetch_optional(reader)
        .await?
        .map(|row| snapshot_from_row(&row))
        .transpose()
}

pub(super) async fn list(
    reader: &SqlitePool,
    sandbox: &SandboxId,
) -> Result<Vec<SnapshotRecord>, StoreError> {
    let rows =
        sqlx::query("SELECT * FROM snapshots WHERE sandbox_id = ?1 ORDER BY created_at, rowid")
            .bind(sandbox.as_str())
            .fetch_all(reader)
            .await?;
    rows.iter().map(snapshot_from_row).collect()
}

pub(super) async fn children(
    reader: &SqlitePool,
    snapshot: &SnapshotId,
) -> Result<Vec<SandboxId>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM sandboxes WHERE source_snapshot = ?1 ORDER BY created_at, rowid",
    )
    .bind(snapshot.as_str())
    .fetch_all(reader)
    .await?;
    parse_ids(ids)
}

pub(super) async fn mark_deleted(writer: &SqlitePool, id: &SnapshotId) -> Result<(), StoreError> {
    let now = to_millis(OffsetDateTime::now_utc());
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let done =
        sqlx::query("UPDATE snapshots SET deleted_at = COALESCE(deleted_at, ?1) WHERE id = ?2")
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("snapshot {id}")));
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn unreferenced(reader: &SqlitePool) -> Result<Vec<SnapshotRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM snapshots s
         WHERE deleted_at IS NULL AND (
             (kind = 'pause' AND NOT EXISTS (
                 SELECT 1 FROM sandboxes b
                 WHERE b.paused_snapshot = s.id
                   AND b.state IN ('pausing', 'paused', 'resuming')))
          OR (kind = 'named' AND NOT EXISTS (
                 SELECT 1 FROM sandboxes b
                 WHERE b.id = s.sandbox_id AND b.state NOT IN ('killed', 'failed')))
          OR (kind = 'fork'
              -- a fork's row comes a moment before its branches' rows
              AND created_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000 - ?1
              AND NOT EXISTS (
                 SELECT 1 FROM sandboxes b
                 WHERE b.source_snapshot = s.id AND b.state = 'creating')))
         ORDER BY created_at, rowid",
    )
    .bind(FORK_GRACE_MS)
    .fetch_all(reader)
    .await?;
    rows.iter().map(snapshot_from_row).collect()
}

/// A fork image is kept at least this long, whatever its branches do: its
/// row is written before the branches' rows that refer to it.
const FORK_GRACE_MS: i64 = 5 * 60 * 1000;

pub(super) async fn live_ids(reader: &SqlitePool) -> Result<Vec<SnapshotId>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM snapshots WHERE deleted_at IS NULL
         UNION SELECT snapshot FROM template_snapshots",
    )
    .fetch_all(reader)
    .await?;
    ids.into_iter()
        .map(|id| {
            id.parse().map_err(|e| StoreError::Corrupt {
                table: super::codec::SNAPSHOTS,
                detail: format!("column id: {e}"),
            })
        })
        .collect()
}

pub(super) async fn touch(
    writer: &SqlitePool,
    id: &SandboxId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE sandboxes SET last_activity = MAX(COALESCE(last_activity, 0), ?1) WHERE id = ?2",
    )
    .bind(to_millis(at))
    .bind(id.as_str())
    .execute(writer)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("sandbox {id}")));
    }
    Ok(())
}

pub(super) async fn idle(
    reader: &SqlitePool,
    now: OffsetDateTime,
) -> Result<Vec<SandboxRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM sandboxes
         WHERE state = 'running' AND idle_timeout_s IS NOT NULL
           AND COALESCE(last_activity, created_at) + idle_timeout_s * 1000 <= ?1
         ORDER BY COALESCE(last_activity, created_at), rowid",
    )
    .bind(to_millis(now))
    .fetch_all(reader)
    .await?;
    rows.iter().map(sandbox_from_row).collect()
}

pub(super) async fn expired_paused(
    reader: &SqlitePool,
    now: OffsetDateTime,
) -> Result<Vec<SandboxId>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM sandboxes
         WHERE state = 'paused' AND state_changed_at + paused_ttl_s * 1000 <= ?1
         ORDER BY state_changed_at, rowid",
    )
    .bind(to_millis(now))
    .fetch_all(reader)
    .await?;
    parse_ids(ids)
}
