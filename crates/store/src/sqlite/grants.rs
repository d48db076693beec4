//! Grant rows. Issuing reuses the key's valid grant for the sandbox, so a
//! client asking for a sandbox's details again and again does not pile up
//! rows; the read-then-insert runs in one `BEGIN IMMEDIATE` transaction.

use sqlx::SqlitePool;
use time::OffsetDateTime;
use warren_core::SandboxId;

use super::codec::{grant_from_row, to_millis};
use crate::{GrantKind, GrantRecord, StoreError};

pub(super) async fn issue(
    writer: &SqlitePool,
    new: &GrantRecord,
    reuse_until: OffsetDateTime,
) -> Result<GrantRecord, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query("DELETE FROM grants WHERE sandbox = ?1 AND expires_at <= ?2")
        .bind(new.sandbox.as_str())
        .bind(to_millis(new.created_at))
        .execute(&mut *tx)
        .await?;
    let existing = sqlx::query(
        "SELECT * FROM grants
         WHERE sandbox = ?1 AND kind = ?2 AND key_id = ?3 AND expires_at > ?4
         ORDER BY expires_at DESC LIMIT 1",
    )
    .bind(new.sandbox.as_str())
    .bind(new.kind.as_str())
    .bind(new.key.as_str())
    .bind(to_millis(reuse_until))
    .fetch_optional(&mut *tx)
    .await?;
    let grant = match existing {
        Some(row) => grant_from_row(&row)?,
        None => {
            sqlx::query(
                "INSERT INTO grants (id, sandbox, kind, key_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(&new.id)
            .bind(new.sandbox.as_str())
            .bind(new.kind.as_str())
            .bind(new.key.as_str())
            .bind(to_millis(new.created_at))
            .bind(to_millis(new.expires_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                    StoreError::NotFound(format!("sandbox {}", new.sandbox))
                }
                other => other.into(),
            })?;
            new.clone()
        }
    };
    tx.commit().await?;
    Ok(grant)
}

pub(super) async fn get(reader: &SqlitePool, id: &str) -> Result<Option<GrantRecord>, StoreError> {
    sqlx::query("SELECT * FROM grants WHERE id = ?1")
        .bind(id)
        .fetch_optional(reader)
        .await?
        .map(|row| grant_from_row(&row))
        .transpose()
}

pub(super) async fn live(
    reader: &SqlitePool,
    kind: GrantKind,
    now: OffsetDateTime,
) -> Result<Vec<GrantRecord>, StoreError> {
    sqlx::query(
        "SELECT g.* FROM grants g JOIN sandboxes s ON s.id = g.sandbox
         WHERE g.kind = ?1 AND g.expires_at > ?2 AND s.state NOT IN ('killed', 'failed')",
    )
    .bind(kind.as_str())
    .bind(to_millis(now))
    .fetch_all(reader)
    .await?
    .iter()
    .map(grant_from_row)
    .collect()
}

pub(super) async fn delete_for_sandbox(
    writer: &SqlitePool,
    sandbox: &SandboxId,
) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM grants WHERE sandbox = ?1")
        .bind(sandbox.as_str())
        .execute(writer)
        .await?;
    Ok(done.rows_affected())
}
