//! Hook and timer rows. A hook is inserted with its subscriptions in one
//! transaction; a timer is inserted in the same `BEGIN IMMEDIATE`
//! transaction that counts its sandbox's pending timers, so two concurrent
//! creates cannot both take the last place.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use warren_core::{SandboxId, TeamId};

use super::codec::{to_i64, to_millis};
use crate::{HookRecord, StoreError, Subscription, TimerRecord};

const HOOKS: &str = "hooks";
const TIMERS: &str = "sandbox_timers";

fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: detail.to_string(),
    }
}

fn get<'r, T>(row: &'r SqliteRow, table: &'static str, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| corrupt(table, format!("column {column}: {e}")))
}

fn parse<T>(row: &SqliteRow, table: &'static str, column: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = get(row, table, column)?;
    text.parse()
        .map_err(|e| corrupt(table, format!("column {column}: {e}")))
}

fn time(ms: i64, table: &'static str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| corrupt(table, format!("{ms} ms: {e}")))
}

fn count(row: &SqliteRow, column: &str) -> Result<u64, StoreError> {
    let n: i64 = get(row, HOOKS, column)?;
    u64::try_from(n).map_err(|e| corrupt(HOOKS, format!("column {column}: {e}")))
}

fn hook_from_row(
    row: &SqliteRow,
    subscriptions: Vec<Subscription>,
) -> Result<HookRecord, StoreError> {
    let last: Option<i64> = get(row, HOOKS, "last_delivery_at")?;
    Ok(HookRecord {
        id: get(row, HOOKS, "id")?,
        team: parse(row, HOOKS, "team")?,
        kind: parse(row, HOOKS, "kind")?,
        ciphertext: get(row, HOOKS, "ciphertext")?,
        nonce: get(row, HOOKS, "nonce")?,
        created_by: parse(row, HOOKS, "created_by")?,
        created_at: time(get(row, HOOKS, "created_at")?, HOOKS)?,
        accepted: count(row, "accepted")?,
        rejected: count(row, "rejected")?,
        last_delivery_at: last.map(|ms| time(ms, HOOKS)).transpose()?,
        subscriptions,
    })
}

fn subscription_from_row(row: &SqliteRow) -> Result<Subscription, StoreError> {
    const T: &str = "hook_subscriptions";
    let events: String = get(row, T, "events")?;
    let pull_request: Option<i64> = get(row, T, "pull_request")?;
    let position: i64 = get(row, T, "position")?;
    Ok(Subscription {
        id: u32::try_from(position).map_err(|e| corrupt(T, e))?,
        sandbox: parse(row, T, "sandbox")?,
        repository: get(row, T, "repository")?,
        pull_request: pull_request
            .map(|n| u64::try_from(n).map_err(|e| corrupt(T, e)))
            .transpose()?,
        branch: get(row, T, "branch")?,
        events: serde_json::from_str(&events).map_err(|e| corrupt(T, e))?,
    })
}

fn timer_from_row(row: &SqliteRow) -> Result<TimerRecord, StoreError> {
    Ok(TimerRecord {
        id: get(row, TIMERS, "id")?,
        sandbox: parse(row, TIMERS, "sandbox")?,
        fires_at: time(get(row, TIMERS, "fires_at")?, TIMERS)?,
        kind: get(row, TIMERS, "type")?,
        source: get(row, TIMERS, "source")?,
        data: get(row, TIMERS, "data")?,
        created_by: parse(row, TIMERS, "created_by")?,
        created_at: time(get(row, TIMERS, "created_at")?, TIMERS)?,
    })
}

fn missing_parent(e: sqlx::Error, what: String) -> StoreError {
    match e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NotFound(what),
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::AlreadyExists(what),
        other => other.into(),
    }
}

pub(super) async fn insert(writer: &SqlitePool, hook: &HookRecord) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(
        "INSERT INTO hooks (id, team, kind, ciphertext, nonce, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(&hook.id)
    .bind(hook.team.as_str())
    .bind(hook.kind.as_str())
    .bind(&hook.ciphertext)
    .bind(&hook.nonce)
    .bind(hook.created_by.as_str())
    .bind(to_millis(hook.created_at))
    .execute(&mut *tx)
    .await
    .map_err(|e| missing_parent(e, format!("hook {} of team {}", hook.id, hook.team)))?;
    for sub in &hook.subscriptions {
        insert_subscription(&mut tx, &hook.id, sub).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn insert_subscription(
    tx: &mut sqlx::SqliteConnection,
    hook: &str,
    sub: &Subscription,
) -> Result<(), StoreError> {
    let events = serde_json::to_string(&sub.events).map_err(|source| StoreError::Encode {
        what: "subscription events",
        source,
    })?;
    sqlx::query(
        "INSERT INTO hook_subscriptions
             (hook, position, sandbox, repository, pull_request, branch, events)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(hook)
    .bind(i64::from(sub.id))
    .bind(sub.sandbox.as_str())
    .bind(&sub.repository)
    .bind(sub.pull_request.map(to_i64))
    .bind(&sub.branch)
    .bind(events)
    .execute(&mut *tx)
    .await
    .map_err(|e| missing_parent(e, format!("sandbox {}", sub.sandbox)))?;
    Ok(())
}

pub(super) async fn subscribe(
    writer: &SqlitePool,
    team: &TeamId,
    hook: &str,
    sub: &Subscription,
    max: u32,
) -> Result<u32, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hooks WHERE id = ?1 AND team = ?2")
        .bind(hook)
        .bind(team.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if known == 0 {
        return Err(StoreError::NotFound(format!("hook {hook}")));
    }
    let (held, last): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), MAX(position) FROM hook_subscriptions WHERE hook = ?1")
            .bind(hook)
            .fetch_one(&mut *tx)
            .await?;
    if held >= i64::from(max) {
        return Err(StoreError::QuotaExceeded(format!(
            "hook {hook} has {max} subscriptions; remove one first"
        )));
    }
    let id = last
        .map_or(Ok(0), |n| u32::try_from(n + 1))
        .map_err(|e| corrupt(HOOKS, e))?;
    insert_subscription(&mut tx, hook, &Subscription { id, ..sub.clone() }).await?;
    tx.commit().await?;
    Ok(id)
}

pub(super) async fn unsubscribe(
    writer: &SqlitePool,
    team: &TeamId,
    hook: &str,
    id: u32,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "DELETE FROM hook_subscriptions
         WHERE hook = ?1 AND position = ?2
           AND hook IN (SELECT id FROM hooks WHERE team = ?3)",
    )
    .bind(hook)
    .bind(i64::from(id))
    .bind(team.as_str())
    .execute(writer)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!(
            "subscription {id} of hook {hook}"
        )));
    }
    Ok(())
}

async fn subscriptions(reader: &SqlitePool, hook: &str) -> Result<Vec<Subscription>, StoreError> {
    sqlx::query("SELECT * FROM hook_subscriptions WHERE hook = ?1 ORDER BY position")
        .bind(hook)
        .fetch_all(reader)
        .await?
        .iter()
        .map(subscription_from_row)
        .collect()
}

pub(super) async fn get_hook(
    reader: &SqlitePool,
    id: &str,
) -> Result<Option<HookRecord>, StoreError> {
    let Some(row) = sqlx::query("SELECT * FROM hooks WHERE id = ?1")
        .bind(id)
        .fetch_optional(reader)
        .await?
    else {
        return Ok(None);
    };
    let subs = subscriptions(reader, id).await?;
    hook_from_row(&row, subs).map(Some)
}

pub(super) async fn list_hooks(
    reader: &SqlitePool,
    team: &TeamId,
) -> Result<Vec<HookRecord>, StoreError> {
    let rows = sqlx::query("SELECT * FROM hooks WHERE team = ?1 ORDER BY created_at, id")
        .bind(team.as_str())
        .fetch_all(reader)
        .await?;
    let mut hooks = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = get(row, HOOKS, "id")?;
        let subs = subscriptions(reader, &id).await?;
        hooks.push(hook_from_row(row, subs)?);
    }
    Ok(hooks)
}

pub(super) async fn delete_hook(
    writer: &SqlitePool,
    team: &TeamId,
    id: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM hooks WHERE id = ?1 AND team = ?2")
        .bind(id)
        .bind(team.as_str())
        .execute(writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("hook {id}")));
    }
    Ok(())
}

pub(super) async fn count_delivery(
    writer: &SqlitePool,
    id: &str,
    accepted: bool,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let sql = if accepted {
        "UPDATE hooks SET accepted = accepted + 1, last_delivery_at = ?2 WHERE id = ?1"
    } else {
        "UPDATE hooks SET rejected = rejected + 1, last_delivery_at = ?2 WHERE id = ?1"
    };
    sqlx::query(sql)
        .bind(id)
        .bind(to_millis(at))
        .execute(writer)
        .await?;
    Ok(())
}

pub(super) async fn delivery_seen(
    reader: &SqlitePool,
    hook: &str,
    delivery: &str,
) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM hook_deliveries WHERE hook = ?1 AND delivery = ?2",
    )
    .bind(hook)
    .bind(delivery)
    .fetch_one(reader)
    .await?;
    Ok(n > 0)
}

pub(super) async fn note_delivery(
    writer: &SqlitePool,
    hook: &str,
    delivery: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT OR IGNORE INTO hook_deliveries (hook, delivery, seen_at) VALUES (?1, ?2, ?3)",
    )
    .bind(hook)
    .bind(delivery)
    .bind(to_millis(at))
    .execute(writer)
    .await;
    match done {
        Ok(_) => Ok(()),
        // The hook was deleted meanwhile: there is nothing to remember.
        Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn forget_deliveries(
    writer: &SqlitePool,
    seen_before: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM hook_deliveries WHERE seen_at < ?1")
        .bind(to_millis(seen_before))
        .execute(writer)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn insert_timer(
    writer: &SqlitePool,
    timer: &TimerRecord,
    max_pending: u64,
) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sandbox_timers WHERE sandbox = ?1")
        .bind(timer.sandbox.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if u64::try_from(held).unwrap_or(0) >= max_pending {
        return Err(StoreError::QuotaExceeded(format!(
            "sandbox {} has {max_pending} pending timers; delete one or wait for one to fire",
            timer.sandbox
        )));
    }
    sqlx::query(
        "INSERT INTO sandbox_timers (id, sandbox, fires_at, type, source, data, created_by,
                                     created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(&timer.id)
    .bind(timer.sandbox.as_str())
    .bind(to_millis(timer.fires_at))
    .bind(&timer.kind)
    .bind(&timer.source)
    .bind(&timer.data)
    .bind(timer.created_by.as_str())
    .bind(to_millis(timer.created_at))
    .execute(&mut *tx)
    .await
    .map_err(|e| missing_parent(e, format!("sandbox {}", timer.sandbox)))?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list_timers(
    reader: &SqlitePool,
    sandbox: &SandboxId,
) -> Result<Vec<TimerRecord>, StoreError> {
    sqlx::query("SELECT * FROM sandbox_timers WHERE sandbox = ?1 ORDER BY fires_at, id")
        .bind(sandbox.as_str())
        .fetch_all(reader)
        .await?
        .iter()
        .map(timer_from_row)
        .collect()
}

pub(super) async fn due_timers(
    reader: &SqlitePool,
    now: OffsetDateTime,
    limit: u32,
) -> Result<Vec<TimerRecord>, StoreError> {
    sqlx::query("SELECT * FROM sandbox_timers WHERE fires_at <= ?1 ORDER BY fires_at, id LIMIT ?2")
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(reader)
        .await?
        .iter()
        .map(timer_from_row)
        .collect()
}

pub(super) async fn delete_timer(
    writer: &SqlitePool,
    sandbox: &SandboxId,
    id: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM sandbox_timers WHERE id = ?1 AND sandbox = ?2")
        .bind(id)
        .bind(sandbox.as_str())
        .execute(writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!(
            "timer {id} of sandbox {sandbox}"
        )));
    }
    Ok(())
}
