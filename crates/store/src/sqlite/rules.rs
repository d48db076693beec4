//! Anomaly rules by scope (a team id, or `*` for the operator's). A scope's
//! rules are replaced as a whole, in one transaction.

use sqlx::SqlitePool;
use time::OffsetDateTime;
use warren_core::KeyId;
use warren_core::rules::Rule;

use super::codec::{to_i64, to_millis};
use crate::StoreError;

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: "rules",
        detail,
    }
}

/// Every stored rule with its scope.
pub(super) async fn all(reader: &SqlitePool) -> Result<Vec<(String, Rule)>, StoreError> {
    let rows: Vec<(String, String, f64, i64, String)> = sqlx::query_as(
        "SELECT scope, kind, threshold, for_s, action FROM rules ORDER BY scope, kind",
    )
    .fetch_all(reader)
    .await?;
    rows.into_iter()
        .map(|(scope, kind, threshold, for_s, action)| {
            let rule = Rule {
                kind: kind
                    .parse()
                    .map_err(|e| corrupt(format!("scope {scope}: {e}")))?,
                threshold,
                for_s: u64::try_from(for_s).unwrap_or(0),
                action: action
                    .parse()
                    .map_err(|e| corrupt(format!("scope {scope}: {e}")))?,
            };
            Ok((scope, rule))
        })
        .collect()
}

pub(super) async fn replace(
    writer: &SqlitePool,
    scope: &str,
    rules: &[Rule],
    by: &KeyId,
) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query("DELETE FROM rules WHERE scope = ?1")
        .bind(scope)
        .execute(&mut *tx)
        .await?;
    let now = to_millis(OffsetDateTime::now_utc());
    for r in rules {
        sqlx::query(
            "INSERT INTO rules (scope, kind, threshold, for_s, action, updated_by, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(scope)
        .bind(r.kind.as_str())
        .bind(r.threshold)
        .bind(to_i64(r.for_s))
        .bind(r.action.to_string())
        .bind(by.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
