//! Pool settings rows and the claim of a pooled sandbox (see `crate::pool`).
//!
//! The claim runs in one `BEGIN IMMEDIATE` transaction: it finds the row
//! still running in the pool team, admits it against the claiming team's
//! quota (`quotas::admit`), then rewrites its owner, environment,
//! lifetime, policy and inbox settings and stamps its creation time, so
//! the row reads exactly like one a cold create inserted.

use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use warren_core::{KeyId, Limits, SandboxId};

use super::codec::{encode_inbox, encode_map, encode_network, sandbox_from_row, to_i64, to_millis};
use crate::pool::POOL_TEAM;
use crate::{PoolClaim, PoolRecord, SandboxRecord, StoreError};

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: "pools",
        detail,
    }
}

fn pool_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<PoolRecord, StoreError> {
    let small = |column: &str| -> Result<u32, StoreError> {
        let n: i64 = row.try_get(column)?;
        u32::try_from(n).map_err(|_| corrupt(format!("{column} {n} is out of range")))
    };
    let updated_at: i64 = row.try_get("updated_at")?;
    let updated_by: String = row.try_get("updated_by")?;
    Ok(PoolRecord {
        template: row.try_get("template")?,
        limits: Limits {
            cpus: small("cpus")?,
            memory_mb: small("memory_mb")?,
            disk_mb: small("disk_mb")?,
            ..Limits::default()
        },
        min: small("min_ready")?,
        max: small("max_ready")?,
        frozen: row.try_get::<i64, _>("frozen")? != 0,
        updated_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(updated_at) * 1_000_000)
            .map_err(|e| corrupt(format!("updated_at {updated_at}: {e}")))?,
        updated_by: updated_by
            .parse::<KeyId>()
            .map_err(|e| corrupt(format!("updated_by: {e}")))?,
    })
}

pub(super) async fn list(reader: &SqlitePool) -> Result<Vec<PoolRecord>, StoreError> {
    let rows = sqlx::query("SELECT * FROM pools ORDER BY template")
        .fetch_all(reader)
        .await?;
    rows.iter().map(pool_from_row).collect()
}

pub(super) async fn put(writer: &SqlitePool, pool: &PoolRecord) -> Result<PoolRecord, StoreError> {
    let row = sqlx::query(
        "INSERT INTO pools (template, cpus, memory_mb, disk_mb, min_ready, max_ready,
                            updated_at, updated_by, frozen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (template) DO UPDATE SET
             cpus = ?2, memory_mb = ?3, disk_mb = ?4, min_ready = ?5, max_ready = ?6,
             updated_at = ?7, updated_by = ?8, frozen = ?9
         RETURNING *",
    )
    .bind(&pool.template)
    .bind(i64::from(pool.limits.cpus))
    .bind(i64::from(pool.limits.memory_mb))
    .bind(i64::from(pool.limits.disk_mb))
    .bind(i64::from(pool.min))
    .bind(i64::from(pool.max))
    .bind(to_millis(pool.updated_at))
    .bind(pool.updated_by.as_str())
    .bind(i64::from(pool.frozen))
    .fetch_one(writer)
    .await?;
    pool_from_row(&row)
}

pub(super) async fn delete(writer: &SqlitePool, template: &str) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM pools WHERE template = ?1")
        .bind(template)
        .execute(writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("pool of template {template}")));
    }
    Ok(())
}

pub(super) async fn claim(
    writer: &SqlitePool,
    id: &SandboxId,
    claim: &PoolClaim,
) -> Result<Option<SandboxRecord>, StoreError> {
    let env = encode_map("env", &claim.env)?;
    let metadata = encode_map("metadata", &claim.metadata)?;
    let network = encode_network(&claim.network)?;
    let (wake_on, handler) = encode_inbox(&claim.inbox)?;
    let now = to_millis(OffsetDateTime::now_utc());
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let row =
        sqlx::query("SELECT * FROM sandboxes WHERE id = ?1 AND team = ?2 AND state = 'running'")
            .bind(id.as_str())
            .bind(POOL_TEAM)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let pooled = sandbox_from_row(&row)?;
    let demand = warren_core::quota::Demand::sandboxes(1, &pooled.limits);
    super::quotas::admit(&mut tx, &claim.team, &demand).await?;
    let row = sqlx::query(
        "UPDATE sandboxes SET team = ?1, owner = ?2, created_by = ?3, env = ?4, metadata = ?5,
                expires_at = ?6, timeout_s = ?7, auto_resume = ?8, on_idle = ?9,
                idle_timeout_s = ?10, paused_ttl_s = ?11, network = ?12,
                created_at = ?13, state_changed_at = ?13, last_activity = ?13
         WHERE id = ?14 AND team = ?15 AND state = 'running'
         RETURNING *",
    )
    .bind(claim.team.as_str())
    .bind(claim.owner.as_str())
    .bind(claim.created_by.as_str())
    .bind(env)
    .bind(metadata)
    .bind(to_millis(claim.expires_at))
    .bind(to_i64(claim.persistence.timeout_s))
    .bind(i64::from(claim.persistence.auto_resume))
    .bind(claim.persistence.on_idle.as_str())
    .bind(claim.persistence.idle_timeout_s.map(to_i64))
    .bind(to_i64(claim.persistence.paused_ttl_s))
    .bind(network)
    .bind(now)
    .bind(id.as_str())
    .bind(POOL_TEAM)
    .fetch_one(&mut *tx)
    .await?;
    let record = sandbox_from_row(&row)?;
    sqlx::query("UPDATE sandbox_inboxes SET wake_on = ?2, handler = ?3 WHERE sandbox = ?1")
        .bind(id.as_str())
        .bind(wake_on)
        .bind(handler)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(record))
}
