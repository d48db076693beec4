//! Webhook registrations, lifecycle events and the delivery outbox.
//!
//! A lifecycle event and its deliveries (one per enabled registration of
//! the team that wants its type) are inserted in one `BEGIN IMMEDIATE`
//! transaction, so a delivery never exists without its event nor an event
//! without the deliveries it was due. An attempt's outcome and the
//! delivery's next state are written in one transaction too.

use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, SqlitePool, Type};
use time::OffsetDateTime;
use warren_core::TeamId;

use super::codec::to_millis;
use crate::{
    AttemptNext, AttemptRecord, DeliveryRecord, LifecycleEventRecord, StoreError, WebhookRecord,
};

const WEBHOOKS: &str = "webhooks";
const DELIVERIES: &str = "webhook_deliveries";

/// Reads columns of one row, naming the table and column on failure.
struct Cols<'r>(&'r SqliteRow, &'static str);

impl<'r> Cols<'r> {
    fn corrupt(&self, column: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            table: self.1,
            detail: format!("column {column}: {detail}"),
        }
    }

    fn get<T: Decode<'r, Sqlite> + Type<Sqlite>>(&self, column: &str) -> Result<T, StoreError> {
        self.0.try_get(column).map_err(|e| self.corrupt(column, e))
    }

    fn parse<T>(&self, column: &str) -> Result<T, StoreError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text: String = self.get(column)?;
        text.parse().map_err(|e| self.corrupt(column, e))
    }

    fn time(&self, column: &str) -> Result<OffsetDateTime, StoreError> {
        let ms: i64 = self.get(column)?;
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .map_err(|e| self.corrupt(column, e))
    }

    fn optional_time(&self, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        let ms: Option<i64> = self.get(column)?;
        ms.map(|ms| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .map_err(|e| self.corrupt(column, e))
        })
        .transpose()
    }

    fn optional_status(&self, column: &str) -> Result<Option<u16>, StoreError> {
        let n: Option<i64> = self.get(column)?;
        n.map(|n| u16::try_from(n).map_err(|e| self.corrupt(column, e)))
            .transpose()
    }
}

fn webhook_from_row(row: &SqliteRow) -> Result<WebhookRecord, StoreError> {
    let c = Cols(row, WEBHOOKS);
    let events: String = c.get("events")?;
    let enabled: i64 = c.get("enabled")?;
    Ok(WebhookRecord {
        id: c.get("id")?,
        team: c.parse("team")?,
        name: c.get("name")?,
        url: c.get("url")?,
        events: serde_json::from_str(&events).map_err(|e| c.corrupt("events", e))?,
        flavor: c.parse("flavor")?,
        enabled: enabled == 1,
        secret_ciphertext: c.get("secret_ciphertext")?,
        secret_nonce: c.get("secret_nonce")?,
        created_by: c.parse("created_by")?,
        created_at: c.time("created_at")?,
    })
}

/// An event from the `e_`-prefixed columns of a join (or the plain ones).
fn event_from_row(row: &SqliteRow, prefix: &str) -> Result<LifecycleEventRecord, StoreError> {
    let c = Cols(row, "lifecycle_events");
    let col = |name: &str| format!("{prefix}{name}");
    Ok(LifecycleEventRecord {
        id: c.get(&col("id"))?,
        team: c.parse(&col("team"))?,
        sandbox: c.get(&col("sandbox"))?,
        kind: c.get(&col("type"))?,
        data: c.get(&col("data"))?,
        at: c.time(&col("at"))?,
    })
}

fn delivery_from_row(row: &SqliteRow) -> Result<DeliveryRecord, StoreError> {
    let c = Cols(row, DELIVERIES);
    let attempts: i64 = c.get("attempts")?;
    Ok(DeliveryRecord {
        webhook: c.get("webhook")?,
        event: event_from_row(row, "e_")?,
        state: c.parse("state")?,
        attempts: u32::try_from(attempts).map_err(|e| c.corrupt("attempts", e))?,
        next_attempt_at: c.optional_time("next_attempt_at")?,
        first_attempt_at: c.optional_time("first_attempt_at")?,
        last_status: c.optional_status("last_status")?,
        last_error: c.get("last_error")?,
        delivered_at: c.optional_time("delivered_at")?,
        log: Vec::new(),
    })
}

fn encode_events(events: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(events).map_err(|source| StoreError::Encode {
        what: "webhook events",
        source,
    })
}

pub(super) async fn insert(
    writer: &SqlitePool,
    rec: &WebhookRecord,
    max_per_team: u32,
) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE team = ?1")
        .bind(rec.team.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if held >= i64::from(max_per_team) {
        return Err(StoreError::QuotaExceeded(format!(
            "team {} has its {max_per_team} webhooks; delete one first",
            rec.team
        )));
    }
    sqlx::query(
        "INSERT INTO webhooks (id, team, name, url, events, flavor, enabled, secret_ciphertext,
                               secret_nonce, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .bind(&rec.id)
    .bind(rec.team.as_str())
    .bind(&rec.name)
    .bind(&rec.url)
    .bind(encode_events(&rec.events)?)
    .bind(rec.flavor.as_str())
    .bind(i64::from(rec.enabled))
    .bind(&rec.secret_ciphertext)
    .bind(&rec.secret_nonce)
    .bind(rec.created_by.as_str())
    .bind(to_millis(rec.created_at))
    .execute(&mut *tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            StoreError::NotFound(format!("team {}", rec.team))
        }
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::AlreadyExists(format!("webhook {}", rec.id))
        }
        other => other.into(),
    })?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(
    reader: &SqlitePool,
    id: &str,
) -> Result<Option<WebhookRecord>, StoreError> {
    sqlx::query("SELECT * FROM webhooks WHERE id = ?1")
        .bind(id)
        .fetch_optional(reader)
        .await?
        .map(|row| webhook_from_row(&row))
        .transpose()
}

pub(super) async fn list(
    reader: &SqlitePool,
    team: &TeamId,
) -> Result<Vec<WebhookRecord>, StoreError> {
    sqlx::query("SELECT * FROM webhooks WHERE team = ?1 ORDER BY created_at, id")
        .bind(team.as_str())
        .fetch_all(reader)
        .await?
        .iter()
        .map(webhook_from_row)
        .collect()
}

pub(super) async fn update(writer: &SqlitePool, rec: &WebhookRecord) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE webhooks SET name = ?2, url = ?3, events = ?4, enabled = ?5,
                secret_ciphertext = ?6, secret_nonce = ?7
         WHERE id = ?1",
    )
    .bind(&rec.id)
    .bind(&rec.name)
    .bind(&rec.url)
    .bind(encode_events(&rec.events)?)
    .bind(i64::from(rec.enabled))
    .bind(&rec.secret_ciphertext)
    .bind(&rec.secret_nonce)
    .execute(writer)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("webhook {}", rec.id)));
    }
    Ok(())
}

pub(super) async fn delete(writer: &SqlitePool, id: &str) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = ?1")
        .bind(id)
        .execute(writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("webhook {id}")));
    }
    Ok(())
}

pub(super) async fn record_event(
    writer: &SqlitePool,
    event: &LifecycleEventRecord,
) -> Result<u64, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(
        "INSERT INTO lifecycle_events (id, team, sandbox, type, data, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(&event.id)
    .bind(event.team.as_str())
    .bind(&event.sandbox)
    .bind(&event.kind)
    .bind(&event.data)
    .bind(to_millis(event.at))
    .execute(&mut *tx)
    .await?;
    let hooks: Vec<WebhookRecord> =
        sqlx::query("SELECT * FROM webhooks WHERE team = ?1 AND enabled = 1")
            .bind(event.team.as_str())
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(webhook_from_row)
            .collect::<Result<_, _>>()?;
    let mut enqueued = 0;
    for hook in hooks.iter().filter(|h| h.wants(&event.kind)) {
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook, event, state, next_attempt_at)
             VALUES (?1, ?2, 'pending', ?3)",
        )
        .bind(&hook.id)
        .bind(&event.id)
        .bind(to_millis(event.at))
        .execute(&mut *tx)
        .await?;
        enqueued += 1;
    }
    tx.commit().await?;
    Ok(enqueued)
}

pub(super) async fn sandbox_events(
    reader: &SqlitePool,
    sandbox: &str,
    page: &crate::EventPage,
) -> Result<Vec<LifecycleEventRecord>, StoreError> {
    let query = if page.ascending {
        "SELECT * FROM lifecycle_events
         WHERE sandbox = ?1 AND (?4 = '[]' OR type IN (SELECT value FROM json_each(?4)))
         ORDER BY at ASC, rowid ASC LIMIT ?2 OFFSET ?3"
    } else {
        "SELECT * FROM lifecycle_events
         WHERE sandbox = ?1 AND (?4 = '[]' OR type IN (SELECT value FROM json_each(?4)))
         ORDER BY at DESC, rowid DESC LIMIT ?2 OFFSET ?3"
    };
    sqlx::query(query)
        .bind(sandbox)
        .bind(i64::from(page.limit))
        .bind(i64::from(page.offset))
        .bind(encode_events(&page.types)?)
        .fetch_all(reader)
        .await?
        .iter()
        .map(|row| event_from_row(row, ""))
        .collect()
}

macro_rules! delivery_join {
    ($rest:literal) => {
        concat!(
            "SELECT d.*, e.id AS e_id, e.team AS e_team, e.sandbox AS e_sandbox,
                    e.type AS e_type, e.data AS e_data, e.at AS e_at
             FROM webhook_deliveries d JOIN lifecycle_events e ON e.id = d.event ",
            $rest
        )
    };
}

pub(super) async fn due(
    reader: &SqlitePool,
    now: OffsetDateTime,
    limit: u32,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    sqlx::query(delivery_join!(
        "WHERE d.state = 'pending' AND d.next_attempt_at <= ?1
         ORDER BY d.next_attempt_at LIMIT ?2"
    ))
    .bind(to_millis(now))
    .bind(i64::from(limit))
    .fetch_all(reader)
    .await?
    .iter()
    .map(delivery_from_row)
    .collect()
}

pub(super) async fn record_attempt(
    writer: &SqlitePool,
    webhook: &str,
    event: &str,
    attempt: &AttemptRecord,
    next: AttemptNext,
) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let (state, next_at, delivered_at) = match next {
        AttemptNext::Delivered => ("delivered", None, Some(to_millis(attempt.at))),
        AttemptNext::Retry(at) => ("pending", Some(to_millis(at)), None),
        AttemptNext::Failed => ("failed", None, None),
    };
    let done = sqlx::query(
        "UPDATE webhook_deliveries
         SET state = ?3, attempts = ?4, next_attempt_at = ?5,
             first_attempt_at = COALESCE(first_attempt_at, ?6),
             last_status = ?7, last_error = ?8, delivered_at = ?9
         WHERE webhook = ?1 AND event = ?2",
    )
    .bind(webhook)
    .bind(event)
    .bind(state)
    .bind(i64::from(attempt.attempt))
    .bind(next_at)
    .bind(to_millis(attempt.at))
    .bind(attempt.status.map(i64::from))
    .bind(&attempt.error)
    .bind(delivered_at)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        // The registration was deleted meanwhile: nothing to record.
        return Ok(());
    }
    sqlx::query(
        "INSERT OR REPLACE INTO webhook_attempts (webhook, event, attempt, at, status, error,
                                                  response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(webhook)
    .bind(event)
    .bind(i64::from(attempt.attempt))
    .bind(to_millis(attempt.at))
    .bind(attempt.status.map(i64::from))
    .bind(&attempt.error)
    .bind(&attempt.response)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn deliveries(
    reader: &SqlitePool,
    webhook: &str,
    limit: u32,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut out: Vec<DeliveryRecord> = sqlx::query(delivery_join!(
        "WHERE d.webhook = ?1 ORDER BY e.at DESC, e.rowid DESC LIMIT ?2"
    ))
    .bind(webhook)
    .bind(i64::from(limit))
    .fetch_all(reader)
    .await?
    .iter()
    .map(delivery_from_row)
    .collect::<Result<_, _>>()?;
    for d in &mut out {
        d.log = sqlx::query(
            "SELECT * FROM webhook_attempts WHERE webhook = ?1 AND event = ?2 ORDER BY attempt",
        )
        .bind(webhook)
        .bind(&d.event.id)
        .fetch_all(reader)
        .await?
        .iter()
        .map(|row| {
            let c = Cols(row, "webhook_attempts");
            let attempt: i64 = c.get("attempt")?;
            Ok(AttemptRecord {
                attempt: u32::try_from(attempt).map_err(|e| c.corrupt("attempt", e))?,
                at: c.time("at")?,
                status: c.optional_status("status")?,
                error: c.get("error")?,
                response: c.get("response")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    }
    Ok(out)
}

pub(super) async fn prune(writer: &SqlitePool, before: OffsetDateTime) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM lifecycle_events WHERE at < ?1 AND NOT EXISTS
           (SELECT 1 FROM webhook_deliveries d WHERE d.event = lifecycle_events.id
              AND d.state = 'pending')",
    )
    .bind(to_millis(before))
    .execute(writer)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WebhookFlavor;

    #[test]
    fn a_registration_wants_its_events_only_while_enabled() {
        let mut hook = WebhookRecord {
            id: "w".into(),
            team: "team_aaaaaaaaaaaaaaaaaaaa"
                .parse()
                .unwrap_or_else(|_| TeamId::generate()),
            name: String::new(),
            url: "http://example.com".into(),
            events: vec!["sandbox.paused".into()],
            flavor: WebhookFlavor::Warren,
            enabled: true,
            secret_ciphertext: Vec::new(),
            secret_nonce: Vec::new(),
            created_by: warren_core::KeyId::generate(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(hook.wants("sandbox.paused"));
        assert!(!hook.wants("sandbox.killed"));
        hook.events = vec!["*".into()];
        assert!(hook.wants("sandbox.killed"));
        hook.enabled = false;
        assert!(!hook.wants("sandbox.killed"));
    }
}
