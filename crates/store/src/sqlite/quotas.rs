//! Team quotas and the admission of new live sandboxes against them.
//!
//! A team's quota is its `team_quotas` row, or `Quota::DEFAULT` without
//! one. Admission ([`admit`]) reads the quota and the team's usage and
//! decides inside the caller's `BEGIN IMMEDIATE` transaction, before the
//! write that adds the sandbox: the transaction holds SQLite's write lock
//! from its first statement, so two concurrent creates cannot both take
//! the team's last slot.

use sqlx::{SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use warren_core::quota::{Demand, Quota, Usage, check};
use warren_core::{KeyId, Limits, SandboxId, SandboxState, TeamId};

use super::codec::{parse_state, sandbox_from_row, to_i64, to_millis};
use crate::{SandboxRecord, StoreError};

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

async fn read<'c, E>(db: E, team: &TeamId) -> Result<Option<Quota>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let row: Option<(i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT max_sandboxes, max_vcpus, max_memory_mb, max_disk_mb, max_snapshot_bytes,
                max_branches
         FROM team_quotas WHERE team = ?1",
    )
    .bind(team.as_str())
    .fetch_optional(db)
    .await?;
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "team_quotas",
        detail,
    };
    row.map(|(s, c, m, d, b, br)| {
        let small = |what: &str, n: i64| {
            u32::try_from(n).map_err(|_| corrupt(format!("team {team}: {what} {n}")))
        };
        Ok(Quota {
            max_sandboxes: small("max_sandboxes", s)?,
            max_vcpus: small("max_vcpus", c)?,
            max_memory_mb: to_u64(m),
            max_disk_mb: to_u64(d),
            max_snapshot_bytes: to_u64(b),
            max_branches: small("max_branches", br)?,
        })
    })
    .transpose()
}

pub(super) async fn get(reader: &SqlitePool, team: &TeamId) -> Result<Option<Quota>, StoreError> {
    read(reader, team).await
}

pub(super) async fn set(
    writer: &SqlitePool,
    team: &TeamId,
    quota: &Quota,
    by: &KeyId,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO team_quotas (team, max_sandboxes, max_vcpus, max_memory_mb, max_disk_mb,
                                  max_snapshot_bytes, max_branches, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (team) DO UPDATE SET
             max_sandboxes = ?2, max_vcpus = ?3, max_memory_mb = ?4, max_disk_mb = ?5,
             max_snapshot_bytes = ?6, max_branches = ?7, updated_at = ?8, updated_by = ?9",
    )
    .bind(team.as_str())
    .bind(i64::from(quota.max_sandboxes))
    .bind(i64::from(quota.max_vcpus))
    .bind(to_i64(quota.max_memory_mb))
    .bind(to_i64(quota.max_disk_mb))
    .bind(to_i64(quota.max_snapshot_bytes))
    .bind(i64::from(quota.max_branches))
    .bind(to_millis(OffsetDateTime::now_utc()))
    .bind(by.as_str())
    .execute(writer)
    .await
    .map_err(|e| super::teams::insert_error(e, "quota", &format!("team {team}")))?;
    Ok(())
}

pub(super) async fn usage(db: &mut SqliteConnection, team: &TeamId) -> Result<Usage, StoreError> {
    // Every live state but paused holds CPU, memory and disk.
    let (sandboxes, vcpus, memory_mb, disk_mb): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(cpus), 0), COALESCE(SUM(memory_mb), 0),
                COALESCE(SUM(disk_mb), 0)
         FROM sandboxes
         WHERE team = ?1 AND state IN ('creating', 'running', 'pausing', 'resuming')",
    )
    .bind(team.as_str())
    .fetch_one(&mut *db)
    .await?;
    let snapshot_bytes: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(size_bytes), 0) FROM snapshots
         WHERE team = ?1 AND deleted_at IS NULL",
    )
    .bind(team.as_str())
    .fetch_one(&mut *db)
    .await?;
    Ok(Usage {
        sandboxes: u32::try_from(sandboxes).unwrap_or(u32::MAX),
        vcpus: to_u64(vcpus),
        memory_mb: to_u64(memory_mb),
        disk_mb: to_u64(disk_mb),
        snapshot_bytes: to_u64(snapshot_bytes),
    })
}

pub(super) async fn usage_now(reader: &SqlitePool, team: &TeamId) -> Result<Usage, StoreError> {
    let mut conn = reader.acquire().await?;
    usage(&mut conn, team).await
}

/// Whether `demand` fits `team`'s quota now; `QuotaExceeded` naming the
/// limit otherwise. Run it inside the transaction that then adds the load.
pub(super) async fn admit(
    tx: &mut SqliteConnection,
    team: &TeamId,
    demand: &Demand,
) -> Result<(), StoreError> {
    let quota = read(&mut *tx, team).await?.unwrap_or_default();
    let usage = usage(tx, team).await?;
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM teams WHERE id = ?1")
        .bind(team.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let name = name.unwrap_or_else(|| team.to_string());
    check(&name, &quota, &usage, demand).map_err(|e| StoreError::QuotaExceeded(e.message))
}

/// Paused → resuming for a resume or rollback, if the sandbox's CPU and
/// memory fit its team's quota again.
pub(super) async fn begin_resume(
    writer: &SqlitePool,
    id: &SandboxId,
) -> Result<SandboxRecord, StoreError> {
    let now = to_millis(OffsetDateTime::now_utc());
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let row: Option<(String, String, i64, i64, i64)> =
        sqlx::query_as("SELECT state, team, cpus, memory_mb, disk_mb FROM sandboxes WHERE id = ?1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let Some((state, team, cpus, memory_mb, disk_mb)) = row else {
        return Err(StoreError::NotFound(format!("sandbox {id}")));
    };
    let state = parse_state(id, &state)?;
    if state != SandboxState::Paused {
        return Err(StoreError::Conflict {
            expected: SandboxState::Paused,
            actual: state,
        });
    }
    let team: TeamId = team.parse().map_err(|_| StoreError::Corrupt {
        table: "sandboxes",
        detail: format!("sandbox {id}: team '{team}'"),
    })?;
    let limits = Limits {
        cpus: u32::try_from(cpus).unwrap_or(u32::MAX),
        memory_mb: u32::try_from(memory_mb).unwrap_or(u32::MAX),
        disk_mb: u32::try_from(disk_mb).unwrap_or(u32::MAX),
        ..Limits::default()
    };
    admit(&mut tx, &team, &Demand::sandboxes(1, &limits)).await?;
    let row = sqlx::query(
        "UPDATE sandboxes SET state = 'resuming', state_changed_at = ?1
         WHERE id = ?2 AND state = 'paused'
         RETURNING *",
    )
    .bind(now)
    .bind(id.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let record = sandbox_from_row(&row)?;
    tx.commit().await?;
    Ok(record)
}
