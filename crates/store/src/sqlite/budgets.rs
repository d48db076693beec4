//! Budget rows (see `crate::budget`). Marks are compare-and-set updates,
//! so a period's warning or exceeded event is claimed by one caller only.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use warren_core::TeamId;

use super::codec::to_millis;
use crate::{BudgetMark, BudgetRecord, StoreError};

const TABLE: &str = "budgets";

fn corrupt(id: &str, detail: String) -> StoreError {
    StoreError::Corrupt {
        table: TABLE,
        detail: format!("budget {id}: {detail}"),
    }
}

fn time_of(id: &str, ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| corrupt(id, format!("time {ms}: {e}")))
}

fn from_row(row: &SqliteRow) -> Result<BudgetRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let team: String = row.try_get("team")?;
    let user: Option<String> = row.try_get("user_id")?;
    let key: Option<String> = row.try_get("key_id")?;
    let period: String = row.try_get("period")?;
    let action: String = row.try_get("action")?;
    let created_by: String = row.try_get("created_by")?;
    Ok(BudgetRecord {
        team: team
            .parse()
            .map_err(|e| corrupt(&id, format!("team {team}: {e}")))?,
        user: user
            .map(|u| {
                u.parse()
                    .map_err(|e| corrupt(&id, format!("user {u}: {e}")))
            })
            .transpose()?,
        key: key
            .map(|k| k.parse().map_err(|e| corrupt(&id, format!("key {k}: {e}"))))
            .transpose()?,
        period: period
            .parse()
            .map_err(|e| corrupt(&id, format!("period: {e}")))?,
        amount: row.try_get("amount")?,
        action: action
            .parse()
            .map_err(|e| corrupt(&id, format!("action: {e}")))?,
        warned_period: row.try_get("warned_period")?,
        exceeded_period: row.try_get("exceeded_period")?,
        override_period: row.try_get("override_period")?,
        created_by: created_by
            .parse()
            .map_err(|e| corrupt(&id, format!("created_by {created_by}: {e}")))?,
        created_at: time_of(&id, row.try_get("created_at")?)?,
        updated_at: time_of(&id, row.try_get("updated_at")?)?,
        id,
    })
}

/// Inserts `b`, or replaces the row with its id (same team only).
pub(super) async fn put(writer: &SqlitePool, b: &BudgetRecord) -> Result<BudgetRecord, StoreError> {
    let row = sqlx::query(
        "INSERT INTO budgets (id, team, user_id, key_id, period, amount, action, warned_period,
             exceeded_period, override_period, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (id) DO UPDATE SET
             amount = ?6, action = ?7, warned_period = ?8, exceeded_period = ?9,
             override_period = ?10, updated_at = ?13
         WHERE budgets.team = ?2
         RETURNING *",
    )
    .bind(&b.id)
    .bind(b.team.as_str())
    .bind(b.user.as_ref().map(|u| u.as_str().to_owned()))
    .bind(b.key.as_ref().map(|k| k.as_str().to_owned()))
    .bind(b.period.to_string())
    .bind(b.amount)
    .bind(b.action.to_string())
    .bind(&b.warned_period)
    .bind(&b.exceeded_period)
    .bind(&b.override_period)
    .bind(b.created_by.as_str())
    .bind(to_millis(b.created_at))
    .bind(to_millis(b.updated_at))
    .fetch_optional(writer)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("budget {}", b.id)))?;
    from_row(&row)
}

pub(super) async fn get(reader: &SqlitePool, id: &str) -> Result<Option<BudgetRecord>, StoreError> {
    sqlx::query("SELECT * FROM budgets WHERE id = ?1")
        .bind(id)
        .fetch_optional(reader)
        .await?
        .map(|row| from_row(&row))
        .transpose()
}

pub(super) async fn list(
    reader: &SqlitePool,
    team: Option<&TeamId>,
) -> Result<Vec<BudgetRecord>, StoreError> {
    sqlx::query("SELECT * FROM budgets WHERE ?1 IS NULL OR team = ?1 ORDER BY created_at, id")
        .bind(team.map(|t| t.as_str().to_owned()))
        .fetch_all(reader)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub(super) async fn delete(writer: &SqlitePool, team: &TeamId, id: &str) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM budgets WHERE id = ?1 AND team = ?2")
        .bind(id)
        .bind(team.as_str())
        .execute(writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("budget {id}")));
    }
    Ok(())
}

/// Sets the mark to `period` unless it is already; whether this call set it.
pub(super) async fn mark(
    writer: &SqlitePool,
    id: &str,
    which: BudgetMark,
    period: &str,
) -> Result<bool, StoreError> {
    let sql = match which {
        BudgetMark::Warned => {
            "UPDATE budgets SET warned_period = ?2
             WHERE id = ?1 AND (warned_period IS NULL OR warned_period != ?2)"
        }
        BudgetMark::Exceeded => {
            "UPDATE budgets SET exceeded_period = ?2
             WHERE id = ?1 AND (exceeded_period IS NULL OR exceeded_period != ?2)"
        }
    };
    let done = sqlx::query(sql)
        .bind(id)
        .bind(period)
        .execute(writer)
        .await?;
    Ok(done.rows_affected() == 1)
}
