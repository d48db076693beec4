//! Sandbox rows.
//!
//! Writes run on the single writer connection inside `BEGIN IMMEDIATE`
//! transactions, so a read-then-write (slot allocation, compare-and-set
//! reporting) holds SQLite's write lock from its first statement and cannot
//! interleave with another writer, in this process or another one.
//!
//! "Live" below means not killed and not failed (`state NOT IN ('killed',
//! 'failed')`). Slots follow a separate flag, `slot_released`: a sandbox
//! holds its slot from creation until [`release`] sets the flag, which only
//! a killed or failed sandbox can get (a table CHECK enforces it) and which
//! never goes back. Transitions leave the flag alone, so a dead sandbox
//! keeps its slot until the daemon confirms its network is torn down. The
//! allocation query tests `slot_released = 0`, the same expression as the
//! partial unique index on `net_slot`, which is the last line of defence
//! for slot uniqueness. Rows are deleted only once released, so a sandbox
//! whose teardown is unconfirmed stays visible to [`unreleased`].

use sqlx::SqlitePool;
use time::OffsetDateTime;
use warren_core::{SandboxId, SandboxState, Transition};

use super::codec::{encode_map, encode_network, parse_state, sandbox_from_row, to_i64, to_millis};
use crate::{NewSandbox, SandboxFilter, SandboxRecord, StoreError};

/// The lowest slot no sandbox holds: 0 if free, else the smallest held
/// slot whose successor is free.
const LOWEST_FREE_SLOT: &str = "
    WITH held(slot) AS (
        SELECT net_slot FROM sandboxes WHERE slot_released = 0
    )
    SELECT CASE
        WHEN NOT EXISTS (SELECT 1 FROM held WHERE slot = 0) THEN 0
        ELSE (SELECT MIN(a.slot) + 1 FROM held a
              WHERE NOT EXISTS (SELECT 1 FROM held b WHERE b.slot = a.slot + 1))
    END";

/// Inserts `new`; with `in_quota`, only if it fits its team's quota
/// (checked in the same transaction, see `quotas::admit`).
pub(super) async fn create(
    writer: &SqlitePool,
    max_net_slots: u32,
    new: NewSandbox,
    in_quota: bool,
) -> Result<SandboxRecord, StoreError> {
    let env = encode_map("env", &new.env)?;
    let metadata = encode_map("metadata", &new.metadata)?;
    let network = encode_network(&new.network)?;
    let now = to_millis(OffsetDateTime::now_utc());

    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let taken = sqlx::query("SELECT 1 FROM sandboxes WHERE id = ?1")
        .bind(new.id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if taken.is_some() {
        return Err(StoreError::AlreadyExists(format!("sandbox {}", new.id)));
    }
    if in_quota {
        let demand = warren_core::quota::Demand::sandboxes(1, &new.limits);
        super::quotas::admit(&mut tx, &new.team, &demand).await?;
    }
    let slot: i64 = sqlx::query_scalar(LOWEST_FREE_SLOT)
        .fetch_one(&mut *tx)
        .await?;
    if slot >= i64::from(max_net_slots) {
        return Err(StoreError::SlotsExhausted);
    }
    let row = sqlx::query(
        "INSERT INTO sandboxes (id, template, state, cpus, memory_mb, pids, env, metadata,
                                net_slot, created_by, created_at, state_changed_at, expires_at,
                                team, owner,
                                timeout_s, auto_resume, on_idle, idle_timeout_s, paused_ttl_s,
                                source_snapshot, network, disk_mb, template_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14,
                 ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)
         RETURNING *",
    )
    .bind(new.id.as_str())
    .bind(&new.template)
    .bind(SandboxState::Creating.as_str())
    .bind(i64::from(new.limits.cpus))
    .bind(i64::from(new.limits.memory_mb))
    .bind(i64::from(new.limits.pids))
    .bind(env)
    .bind(metadata)
    .bind(slot)
    .bind(new.created_by.as_str())
    .bind(now)
    .bind(to_millis(new.expires_at))
    .bind(new.team.as_str())
    .bind(new.owner.as_str())
    .bind(to_i64(new.persistence.timeout_s))
    .bind(i64::from(new.persistence.auto_resume))
    .bind(new.persistence.on_idle.as_str())
    .bind(new.persistence.idle_timeout_s.map(to_i64))
    .bind(to_i64(new.persistence.paused_ttl_s))
    .bind(new.source_snapshot.as_ref().map(|s| s.as_str().to_owned()))
    .bind(network)
    .bind(i64::from(new.limits.disk_mb))
    .bind(new.template_version.as_deref())
    .fetch_one(&mut *tx)
    .await?;
    let record = sandbox_from_row(&row)?;
    super::events::create_inbox(&mut tx, &new.id, &new.inbox).await?;
    tx.commit().await?;
    Ok(record)
}

pub(super) async fn get(
    reader: &SqlitePool,
    id: &SandboxId,
) -> Result<Option<SandboxRecord>, StoreError> {
    sqlx::query("SELECT * FROM sandboxes WHERE id = ?1")
        .bind(id.as_str())
        .fetch_optional(reader)
        .await?
        .map(|row| sandbox_from_row(&row))
        .transpose()
}

pub(super) async fn list(
    reader: &SqlitePool,
    filter: &SandboxFilter,
) -> Result<Vec<SandboxRecord>, StoreError> {
    let team = filter.team.as_ref().map(|t| t.as_str());
    let rows = if filter.states.is_empty() {
        // Not "the non-terminal states we know": a row in a state this
        // version cannot decode still holds its slot and must show up.
        sqlx::query(
            "SELECT * FROM sandboxes
             WHERE state NOT IN ('killed', 'failed') AND (?1 IS NULL OR team = ?1)
             ORDER BY created_at, rowid",
        )
        .bind(team)
        .fetch_all(reader)
        .await?
    } else {
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        let states = serde_json::to_string(&states).map_err(|source| StoreError::Encode {
            what: "state filter",
            source,
        })?;
        sqlx::query(
            "SELECT * FROM sandboxes
             WHERE state IN (SELECT value FROM json_each(?1)) AND (?2 IS NULL OR team = ?2)
             ORDER BY created_at, rowid",
        )
        .bind(states)
        .bind(team)
        .fetch_all(reader)
        .await?
    };
    // Metadata is matched after decoding: exact string equality on every
    // pair, whatever characters the keys contain.
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let record = sandbox_from_row(row)?;
        let matches = filter
            .metadata
            .iter()
            .all(|(k, v)| record.metadata.get(k) == Some(v));
        if matches {
            out.push(record);
        }
    }
    Ok(out)
}

pub(super) async fn transition(
    writer: &SqlitePool,
    id: &SandboxId,
    from: SandboxState,
    to: SandboxState,
) -> Result<SandboxRecord, StoreError> {
    if !allowed(from, to) {
        return Err(StoreError::IllegalTransition { from, to });
    }
    let now = to_millis(OffsetDateTime::now_utc());
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let updated = sqlx::query(
        "UPDATE sandboxes SET state = ?1, state_changed_at = ?2
         WHERE id = ?3 AND state = ?4
         RETURNING *",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(id.as_str())
    .bind(from.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = updated {
        let record = sandbox_from_row(&row)?;
        tx.commit().await?;
        return Ok(record);
    }
    let actual: Option<String> = sqlx::query_scalar("SELECT state FROM sandboxes WHERE id = ?1")
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    match actual {
        None => Err(StoreError::NotFound(format!("sandbox {id}"))),
        Some(actual) => Err(StoreError::Conflict {
            expected: from,
            actual: parse_state(id, &actual)?,
        }),
    }
}

/// Whether warren-core's state machine has a single step from `from` to
/// `to`. Guarding here keeps killed and failed rows from ever coming back,
/// which would break the slot invariant (a released slot belongs to a dead
/// sandbox only).
fn allowed(from: SandboxState, to: SandboxState) -> bool {
    all_transitions()
        .into_iter()
        .any(|t| from.apply(t).is_ok_and(|next| next == to))
}

fn all_transitions() -> [Transition; 8] {
    use Transition as T;
    // An exhaustive match, so a new variant in warren-core fails to compile
    // here until it is added to the list below.
    let _: fn(Transition) = |t| match t {
        T::Started
        | T::BeginPause
        | T::Paused
        | T::BeginResume
        | T::Resumed
        | T::BeginRollback
        | T::Kill
        | T::Fail => {}
    };
    [
        T::Started,
        T::BeginPause,
        T::Paused,
        T::BeginResume,
        T::Resumed,
        T::BeginRollback,
        T::Kill,
        T::Fail,
    ]
}

pub(super) async fn set_expiry(
    writer: &SqlitePool,
    id: &SandboxId,
    expires_at: OffsetDateTime,
) -> Result<SandboxRecord, StoreError> {
    let row = sqlx::query("UPDATE sandboxes SET expires_at = ?1 WHERE id = ?2 RETURNING *")
        .bind(to_millis(expires_at))
        .bind(id.as_str())
        .fetch_optional(writer)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("sandbox {id}")))?;
    sandbox_from_row(&row)
}

pub(super) async fn expired(
    reader: &SqlitePool,
    now: OffsetDateTime,
) -> Result<Vec<SandboxId>, StoreError> {
    // A paused sandbox does not age, and one pausing or resuming is its
    // lock holder's: the resume gives it a fresh lifetime when it is done.
    // A pooled sandbox is no team's and gets its lifetime when claimed.
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM sandboxes
         WHERE state NOT IN ('killed', 'failed', 'paused', 'pausing', 'resuming')
           AND expires_at <= ?1 AND team != ?2
         ORDER BY expires_at, rowid",
    )
    .bind(to_millis(now))
    .bind(crate::pool::POOL_TEAM)
    .fetch_all(reader)
    .await?;
    parse_ids(ids)
}

pub(super) async fn unreleased(reader: &SqlitePool) -> Result<Vec<SandboxId>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM sandboxes
         WHERE slot_released = 0 AND state IN ('killed', 'failed')
         ORDER BY state_changed_at, rowid",
    )
    .fetch_all(reader)
    .await?;
    parse_ids(ids)
}

pub(super) fn parse_ids(ids: Vec<String>) -> Result<Vec<SandboxId>, StoreError> {
    ids.into_iter()
        .map(|id| {
            id.parse().map_err(|e| StoreError::Corrupt {
                table: super::codec::SANDBOXES,
                detail: format!("column id: {e}"),
            })
        })
        .collect()
}

/// Whether the slot of the killed or failed sandbox `id` is released, read
/// inside `tx`: `NotFound` if there is no such row, `NotTerminal` if the
/// sandbox is not dead.
async fn dead_slot_released(
    tx: &mut sqlx::SqliteConnection,
    id: &SandboxId,
) -> Result<bool, StoreError> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT state, slot_released FROM sandboxes WHERE id = ?1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let (state, released) = row.ok_or_else(|| StoreError::NotFound(format!("sandbox {id}")))?;
    let state = parse_state(id, &state)?;
    if !state.is_terminal() {
        return Err(StoreError::NotTerminal(state));
    }
    Ok(released != 0)
}

pub(super) async fn release(writer: &SqlitePool, id: &SandboxId) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    if dead_slot_released(&mut tx, id).await? {
        return Ok(());
    }
    sqlx::query("UPDATE sandboxes SET slot_released = 1 WHERE id = ?1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn delete(writer: &SqlitePool, id: &SandboxId) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    if !dead_slot_released(&mut tx, id).await? {
        return Err(StoreError::SlotNotReleased(id.clone()));
    }
    sqlx::query("DELETE FROM sandboxes WHERE id = ?1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn purge(
    writer: &SqlitePool,
    ended_before: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM sandboxes
         WHERE slot_released = 1 AND state_changed_at <= ?1",
    )
    .bind(to_millis(ended_before))
    .execute(writer)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use SandboxState as S;

    #[test]
    fn dead_sandboxes_never_come_back() {
        for to in [S::Creating, S::Running, S::Paused, S::Resuming, S::Pausing] {
            assert!(!allowed(S::Killed, to), "killed -> {to}");
            assert!(!allowed(S::Failed, to), "failed -> {to}");
        }
        assert!(allowed(S::Failed, S::Killed));
    }

    #[test]
    fn lifecycle_steps_are_allowed() {
        assert!(allowed(S::Creating, S::Running));
        assert!(allowed(S::Running, S::Pausing));
        assert!(allowed(S::Pausing, S::Paused));
        assert!(allowed(S::Paused, S::Killed));
        assert!(!allowed(S::Creating, S::Paused));
        assert!(!allowed(S::Running, S::Running));
    }
}
