//! Metering sums and meter marks (see `crate::usage`). Sums are added with
//! an upsert per sandbox and minute; sums, marks and forgotten marks of
//! one sample go in one `BEGIN IMMEDIATE` transaction.

use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use warren_core::SandboxId;
use warren_core::metering::{GroupBy, Usage};

use super::codec::{to_i64, to_millis};
use crate::{MeterMark, StoreError, UsageGroup, UsageQuery, UsageSample};

const TABLE: &str = "meter_marks";

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: TABLE,
        detail,
    }
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) async fn record(
    writer: &SqlitePool,
    samples: &[UsageSample],
    marks: &[MeterMark],
    forget: &[SandboxId],
) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    for s in samples {
        let u = &s.usage;
        sqlx::query(
            "INSERT INTO usage_minutes (sandbox_id, minute, cpu_ns, memory_mib_ms,
                 memory_limit_mib_ms, disk_mib_ms, snapshot_mib_ms, egress_bytes, ingress_bytes,
                 running_ms, standby_ms, paused_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (sandbox_id, minute) DO UPDATE SET
                 cpu_ns = cpu_ns + ?3,
                 memory_mib_ms = memory_mib_ms + ?4,
                 memory_limit_mib_ms = memory_limit_mib_ms + ?5,
                 disk_mib_ms = disk_mib_ms + ?6,
                 snapshot_mib_ms = snapshot_mib_ms + ?7,
                 egress_bytes = egress_bytes + ?8,
                 ingress_bytes = ingress_bytes + ?9,
                 running_ms = running_ms + ?10,
                 standby_ms = standby_ms + ?11,
                 paused_ms = paused_ms + ?12",
        )
        .bind(s.sandbox.as_str())
        .bind(s.minute)
        .bind(to_i64(u.cpu_ns))
        .bind(to_i64(u.memory_mib_ms))
        .bind(to_i64(u.memory_limit_mib_ms))
        .bind(to_i64(u.disk_mib_ms))
        .bind(to_i64(u.snapshot_mib_ms))
        .bind(to_i64(u.egress_bytes))
        .bind(to_i64(u.ingress_bytes))
        .bind(to_i64(u.running_ms))
        .bind(to_i64(u.standby_ms))
        .bind(to_i64(u.paused_ms))
        .execute(&mut *tx)
        .await?;
    }
    for m in marks {
        sqlx::query(
            "INSERT INTO meter_marks (sandbox_id, cpu_ns, counted_to) VALUES (?1, ?2, ?3)
             ON CONFLICT (sandbox_id) DO UPDATE SET cpu_ns = ?2, counted_to = ?3",
        )
        .bind(m.sandbox.as_str())
        .bind(to_i64(m.cpu_ns))
        .bind(to_millis(m.counted_to))
        .execute(&mut *tx)
        .await?;
    }
    for id in forget {
        sqlx::query("DELETE FROM meter_marks WHERE sandbox_id = ?1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn marks(reader: &SqlitePool) -> Result<Vec<MeterMark>, StoreError> {
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT sandbox_id, cpu_ns, counted_to FROM meter_marks")
            .fetch_all(reader)
            .await?;
    rows.into_iter()
        .map(|(id, cpu, at)| {
            let sandbox = id
                .parse::<SandboxId>()
                .map_err(|e| corrupt(format!("sandbox id '{id}': {e}")))?;
            let counted_to = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
                .map_err(|e| corrupt(format!("sandbox {id}: counted_to {at}: {e}")))?;
            Ok(MeterMark {
                sandbox,
                cpu_ns: to_u64(cpu),
                counted_to,
            })
        })
        .collect()
}

pub(super) async fn snapshot_bytes(
    reader: &SqlitePool,
) -> Result<Vec<(SandboxId, u64)>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT sandbox_id, SUM(size_bytes) FROM snapshots
         WHERE deleted_at IS NULL GROUP BY sandbox_id",
    )
    .fetch_all(reader)
    .await?;
    rows.into_iter()
        .map(|(id, bytes)| {
            let sandbox = id.parse::<SandboxId>().map_err(|e| StoreError::Corrupt {
                table: "snapshots",
                detail: format!("sandbox id '{id}': {e}"),
            })?;
            Ok((sandbox, to_u64(bytes)))
        })
        .collect()
}

/// The SQL expression a report groups by; a metadata key is bound as the
/// JSON path `?7`, never written into the statement.
pub(super) async fn minutes(
    reader: &SqlitePool,
    id: &SandboxId,
    since: i64,
) -> Result<Vec<UsageSample>, StoreError> {
    let rows = sqlx::query(
        "SELECT minute, cpu_ns, memory_mib_ms, memory_limit_mib_ms, disk_mib_ms,
                snapshot_mib_ms, egress_bytes, ingress_bytes, running_ms, standby_ms,
                paused_ms
         FROM usage_minutes WHERE sandbox_id = ? AND minute >= ? ORDER BY minute",
    )
    .bind(id.as_str())
    .bind(since)
    .fetch_all(reader)
    .await?;
    Ok(rows
        .iter()
        .map(|r| UsageSample {
            sandbox: id.clone(),
            minute: r.get(0),
            usage: Usage {
                cpu_ns: to_u64(r.get(1)),
                memory_mib_ms: to_u64(r.get(2)),
                memory_limit_mib_ms: to_u64(r.get(3)),
                disk_mib_ms: to_u64(r.get(4)),
                snapshot_mib_ms: to_u64(r.get(5)),
                egress_bytes: to_u64(r.get(6)),
                ingress_bytes: to_u64(r.get(7)),
                running_ms: to_u64(r.get(8)),
                standby_ms: to_u64(r.get(9)),
                paused_ms: to_u64(r.get(10)),
            },
        })
        .collect())
}

fn group_expression(group: &GroupBy) -> &'static str {
    match group {
        GroupBy::Team => "s.team",
        GroupBy::User => "s.owner",
        GroupBy::Key => "s.created_by",
        GroupBy::Sandbox => "s.id",
        GroupBy::Template => "s.template",
        GroupBy::Metadata(_) => "json_extract(s.metadata, ?7)",
    }
}

pub(super) async fn report(
    reader: &SqlitePool,
    q: &UsageQuery,
) -> Result<Vec<UsageGroup>, StoreError> {
    let key = group_expression(&q.group_by);
    let path = match &q.group_by {
        GroupBy::Metadata(k) => Some(format!("$.\"{k}\"")),
        _ => None,
    };
    let sql = format!(
        "SELECT CAST({key} AS TEXT) AS k, COUNT(DISTINCT u.sandbox_id),
                SUM(u.cpu_ns), SUM(u.memory_mib_ms), SUM(u.memory_limit_mib_ms),
                SUM(u.disk_mib_ms), SUM(u.snapshot_mib_ms), SUM(u.egress_bytes),
                SUM(u.ingress_bytes), SUM(u.running_ms), SUM(u.standby_ms), SUM(u.paused_ms)
         FROM usage_minutes u JOIN sandboxes s ON s.id = u.sandbox_id
         WHERE u.minute >= ?1 AND u.minute <= ?2 AND u.minute >= s.created_at / 60000
           AND (?3 IS NULL OR s.team = ?3) AND (?4 IS NULL OR s.id = ?4)
           AND (?5 IS NULL OR s.owner = ?5) AND (?6 IS NULL OR s.created_by = ?6)
         GROUP BY k ORDER BY SUM(u.cpu_ns) DESC, k"
    );
    // Safe: `key` is one of `group_expression`'s fixed strings.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to_millis(q.since).div_euclid(60_000))
        .bind(to_millis(q.until).div_euclid(60_000))
        .bind(q.team.as_ref().map(|t| t.as_str().to_owned()))
        .bind(q.sandbox.as_ref().map(|s| s.as_str().to_owned()))
        .bind(q.owner.as_ref().map(|u| u.as_str().to_owned()))
        .bind(q.key.as_ref().map(|k| k.as_str().to_owned()));
    if let Some(path) = path {
        query = query.bind(path);
    }
    let rows = query.fetch_all(reader).await?;
    rows.iter()
        .map(|row| {
            let n = |i: usize| -> Result<u64, StoreError> {
                let v: Option<i64> = row.try_get(i)?;
                Ok(to_u64(v.unwrap_or(0)))
            };
            Ok(UsageGroup {
                key: row.try_get(0)?,
                sandboxes: n(1)?,
                usage: Usage {
                    cpu_ns: n(2)?,
                    memory_mib_ms: n(3)?,
                    memory_limit_mib_ms: n(4)?,
                    disk_mib_ms: n(5)?,
                    snapshot_mib_ms: n(6)?,
                    egress_bytes: n(7)?,
                    ingress_bytes: n(8)?,
                    running_ms: n(9)?,
                    standby_ms: n(10)?,
                    paused_ms: n(11)?,
                },
            })
        })
        .collect()
}
