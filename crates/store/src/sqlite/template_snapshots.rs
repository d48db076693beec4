//! Template snapshot rows: one per template, replaced when a new image is
//! made, deleted with their image. Their images count as live for the
//! snapshot store's start-up sweep (`snapshots::live_ids`).

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use warren_core::{Limits, SnapshotId};

use super::codec::{to_i64, to_millis};
use crate::{StoreError, TemplateSnapshotRecord};

const TABLE: &str = "template_snapshots";

/// Records `rec`, replacing the template's previous row, which is
/// returned (its image is the caller's to delete).
pub(super) async fn put(
    writer: &SqlitePool,
    rec: &TemplateSnapshotRecord,
) -> Result<Option<TemplateSnapshotRecord>, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let old = sqlx::query("SELECT * FROM template_snapshots WHERE template = ?1")
        .bind(&rec.template)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| from_row(&row))
        .transpose()?;
    sqlx::query(
        "INSERT OR REPLACE INTO template_snapshots
             (template, template_key, snapshot, maker, cpus, memory_mb, pids, disk_mb,
              size_bytes, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .bind(&rec.template)
    .bind(&rec.template_key)
    .bind(rec.snapshot.as_str())
    .bind(rec.maker.as_str())
    .bind(i64::from(rec.limits.cpus))
    .bind(i64::from(rec.limits.memory_mb))
    .bind(i64::from(rec.limits.pids))
    .bind(i64::from(rec.limits.disk_mb))
    .bind(to_i64(rec.size_bytes))
    .bind(to_millis(rec.created_at))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(old)
}

pub(super) async fn get(
    reader: &SqlitePool,
    template: &str,
) -> Result<Option<TemplateSnapshotRecord>, StoreError> {
    sqlx::query("SELECT * FROM template_snapshots WHERE template = ?1")
        .bind(template)
        .fetch_optional(reader)
        .await?
        .map(|row| from_row(&row))
        .transpose()
}

pub(super) async fn list(reader: &SqlitePool) -> Result<Vec<TemplateSnapshotRecord>, StoreError> {
    let rows = sqlx::query("SELECT * FROM template_snapshots ORDER BY template")
        .fetch_all(reader)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Deletes the template's row if it still names `snapshot`; whether it did.
pub(super) async fn delete(
    writer: &SqlitePool,
    template: &str,
    snapshot: &SnapshotId,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM template_snapshots WHERE template = ?1 AND snapshot = ?2")
        .bind(template)
        .bind(snapshot.as_str())
        .execute(writer)
        .await?;
    Ok(done.rows_affected() > 0)
}

fn corrupt(template: &str, column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table: TABLE,
        detail: format!("row {template}, column {column}: {detail}"),
    }
}

fn from_row(row: &SqliteRow) -> Result<TemplateSnapshotRecord, StoreError> {
    let template: String = row
        .try_get("template")
        .map_err(|e| corrupt("?", "template", e))?;
    let text = |column: &str| -> Result<String, StoreError> {
        row.try_get::<String, _>(column)
            .map_err(|e| corrupt(&template, column, e))
    };
    let int = |column: &str| -> Result<i64, StoreError> {
        row.try_get::<i64, _>(column)
            .map_err(|e| corrupt(&template, column, e))
    };
    let small = |column: &str| -> Result<u32, StoreError> {
        let n = int(column)?;
        u32::try_from(n).map_err(|_| corrupt(&template, column, format!("{n} is out of range")))
    };
    let size = int("size_bytes")?;
    let created = int("created_at")?;
    Ok(TemplateSnapshotRecord {
        template_key: text("template_key")?,
        snapshot: text("snapshot")?
            .parse()
            .map_err(|e| corrupt(&template, "snapshot", e))?,
        maker: text("maker")?
            .parse()
            .map_err(|e| corrupt(&template, "maker", e))?,
        limits: Limits {
            cpus: small("cpus")?,
            memory_mb: small("memory_mb")?,
            pids: small("pids")?,
            disk_mb: small("disk_mb")?,
        },
        size_bytes: u64::try_from(size)
            .map_err(|_| corrupt(&template, "size_bytes", format!("{size} is out of range")))?,
        created_at: time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(created) * 1_000_000,
        )
        .map_err(|e| corrupt(&template, "created_at", e))?,
        template,
    })
}
