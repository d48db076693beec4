//! Conversions between domain values and SQLite columns.
//!
//! Times are integer unix milliseconds (UTC); env and metadata are JSON
//! objects of strings; ids and states are their canonical strings. Every
//! decode failure becomes [`StoreError::Corrupt`] naming the table, the row
//! and the column, never a panic.

use std::collections::BTreeMap;

use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};
use time::OffsetDateTime;
use warren_core::{
    KeyId, Limits, Persistence, SandboxId, SandboxState, Scope, SnapshotId, TeamId, UserId,
};

use warren_core::network::NetworkPolicy;

use crate::{
    EventRecord, GrantRecord, KeyRecord, NetEventRecord, NewNetEvent, SandboxRecord, SecretRecord,
    SnapshotRecord, StoreError, TeamRecord, UserRecord,
};

pub(super) const SANDBOXES: &str = "sandboxes";
pub(super) const API_KEYS: &str = "api_keys";
pub(super) const TEAMS: &str = "teams";
pub(super) const USERS: &str = "users";
pub(super) const SNAPSHOTS: &str = "snapshots";
pub(super) const NETWORK_EVENTS: &str = "network_events";

/// A network policy as its JSON wire form, for the `network` columns.
pub(super) fn encode_network(policy: &NetworkPolicy) -> Result<String, StoreError> {
    serde_json::to_string(policy).map_err(|source| StoreError::Encode {
        what: "network policy",
        source,
    })
}

pub(super) const SECRETS: &str = "secrets";
pub(super) const GRANTS: &str = "grants";
pub(super) const EVENTS: &str = "sandbox_events";
pub(super) const INBOXES: &str = "sandbox_inboxes";

/// Unix milliseconds, rounded down. `OffsetDateTime` spans the years ±9999,
/// far inside the range of `i64` milliseconds, so the cast cannot truncate.
pub(super) fn to_millis(t: OffsetDateTime) -> i64 {
    t.unix_timestamp_nanos().div_euclid(1_000_000) as i64
}

/// A count or size as SQLite's integer; values past `i64::MAX` (which no
/// validated input reaches) saturate.
pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A JSON object of strings, for the `env` and `metadata` columns.
pub(super) fn encode_map(
    what: &'static str,
    map: &BTreeMap<String, String>,
) -> Result<String, StoreError> {
    serde_json::to_string(map).map_err(|source| StoreError::Encode { what, source })
}

/// Reads one row of one table, reporting failures against that row.
struct RowReader<'r> {
    row: &'r SqliteRow,
    table: &'static str,
    /// Names the row in error messages once its id is known.
    id: String,
}

impl<'r> RowReader<'r> {
    fn new(row: &'r SqliteRow, table: &'static str) -> Self {
        Self {
            row,
            table,
            id: "?".to_owned(),
        }
    }

    fn corrupt(&self, column: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            detail: format!("row {}, column {column}: {detail}", self.id),
        }
    }

    fn get<T>(&self, column: &str) -> Result<T, StoreError>
    where
        T: Decode<'r, Sqlite> + Type<Sqlite>,
    {
        self.row
            .try_get::<T, _>(column)
            .map_err(|e| self.corrupt(column, e))
    }

    fn parse<T>(&self, column: &str) -> Result<T, StoreError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text: String = self.get(column)?;
        text.parse().map_err(|e| self.corrupt(column, e))
    }

    fn optional_parse<T>(&self, column: &str) -> Result<Option<T>, StoreError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text: Option<String> = self.get(column)?;
        text.map(|t| t.parse().map_err(|e| self.corrupt(column, e)))
            .transpose()
    }

    fn u64(&self, column: &str) -> Result<u64, StoreError> {
        let n: i64 = self.get(column)?;
        u64::try_from(n).map_err(|_| self.corrupt(column, format!("{n} is out of range")))
    }

    fn optional_u64(&self, column: &str) -> Result<Option<u64>, StoreError> {
        let n: Option<i64> = self.get(column)?;
        n.map(|n| {
            u64::try_from(n).map_err(|_| self.corrupt(column, format!("{n} is out of range")))
        })
        .transpose()
    }

    fn limits(&self) -> Result<Limits, StoreError> {
        Ok(Limits {
            cpus: self.u32("cpus")?,
            memory_mb: self.u32("memory_mb")?,
            pids: self.u32("pids")?,
            disk_mb: self.u32("disk_mb")?,
        })
    }

    fn u32(&self, column: &str) -> Result<u32, StoreError> {
        let n: i64 = self.get(column)?;
        u32::try_from(n).map_err(|_| self.corrupt(column, format!("{n} is out of range")))
    }

    fn time(&self, column: &str) -> Result<OffsetDateTime, StoreError> {
        let ms: i64 = self.get(column)?;
        self.millis(column, ms)
    }

    fn optional_time(&self, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        let ms: Option<i64> = self.get(column)?;
        ms.map(|ms| self.millis(column, ms)).transpose()
    }

    fn millis(&self, column: &str, ms: i64) -> Result<OffsetDateTime, StoreError> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .map_err(|e| self.corrupt(column, format!("{ms} ms: {e}")))
    }

    fn scopes(&self, column: &str) -> Result<Option<Vec<Scope>>, StoreError> {
        let text: Option<String> = self.get(column)?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| self.corrupt(column, e)))
            .transpose()
    }

    fn network(&self) -> Result<NetworkPolicy, StoreError> {
        let text: String = self.get("network")?;
        serde_json::from_str(&text).map_err(|e| self.corrupt("network", e))
    }

    fn map(&self, column: &str) -> Result<BTreeMap<String, String>, StoreError> {
        let text: String = self.get(column)?;
        serde_json::from_str(&text).map_err(|e| self.corrupt(column, e))
    }
}

pub(super) fn sandbox_from_row(row: &SqliteRow) -> Result<SandboxRecord, StoreError> {
    let mut r = RowReader::new(row, SANDBOXES);
    let id: SandboxId = r.parse("id")?;
    r.id = id.to_string();
    let created_at = r.time("created_at")?;
    let auto_resume: i64 = r.get("auto_resume")?;
    Ok(SandboxRecord {
        template: r.get("template")?,
        template_version: r.get("template_version")?,
        state: r.parse("state")?,
        limits: r.limits()?,
        env: r.map("env")?,
        metadata: r.map("metadata")?,
        net_slot: r.u32("net_slot")?,
        team: r.parse("team")?,
        owner: r.parse("owner")?,
        created_by: r.parse("created_by")?,
        created_at,
        state_changed_at: r.time("state_changed_at")?,
        expires_at: r.time("expires_at")?,
        persistence: Persistence {
            timeout_s: r.u64("timeout_s")?,
            idle_timeout_s: r.optional_u64("idle_timeout_s")?,
            on_idle: r.parse("on_idle")?,
            paused_ttl_s: r.u64("paused_ttl_s")?,
            auto_resume: auto_resume != 0,
        },
        last_activity: r.optional_time("last_activity")?.unwrap_or(created_at),
        source_snapshot: r.optional_parse("source_snapshot")?,
        paused_snapshot: r.optional_parse("paused_snapshot")?,
        pause_mode: r.optional_parse("pause_mode")?,
        network: r.network()?,
        id,
    })
}

pub(super) fn snapshot_from_row(row: &SqliteRow) -> Result<SnapshotRecord, StoreError> {
    let mut r = RowReader::new(row, SNAPSHOTS);
    let id: SnapshotId = r.parse("id")?;
    r.id = id.to_string();
    Ok(SnapshotRecord {
        sandbox_id: r.parse("sandbox_id")?,
        team: r.parse("team")?,
        kind: r.parse("kind")?,
        name: r.get("name")?,
        template: r.get("template")?,
        template_version: r.get("template_version")?,
        limits: r.limits()?,
        env: r.map("env")?,
        parent_snapshot: r.optional_parse("parent_snapshot")?,
        size_bytes: r.u64("size_bytes")?,
        created_by: r.parse("created_by")?,
        created_at: r.time("created_at")?,
        deleted_at: r.optional_time("deleted_at")?,
        network: r.network()?,
        id,
    })
}

pub(super) fn net_event_from_row(row: &SqliteRow) -> Result<NetEventRecord, StoreError> {
    let mut r = RowReader::new(row, NETWORK_EVENTS);
    let seq: i64 = r.get("seq")?;
    r.id = seq.to_string();
    let port: Option<i64> = r.get("port")?;
    Ok(NetEventRecord {
        seq,
        event: NewNetEvent {
            sandbox_id: r.parse("sandbox_id")?,
            at: r.time("at")?,
            kind: r.get("kind")?,
            dest: r.optional_parse("dest")?,
            port: port
                .map(|p| {
                    u16::try_from(p).map_err(|_| r.corrupt("port", format!("{p} is out of range")))
                })
                .transpose()?,
            name: r.get("name")?,
            verdict: r.get("verdict")?,
            reason: r.get("reason")?,
            bytes_out: r.u64("bytes_out")?,
            bytes_in: r.u64("bytes_in")?,
        },
    })
}

pub(super) fn key_from_row(row: &SqliteRow) -> Result<KeyRecord, StoreError> {
    let mut r = RowReader::new(row, API_KEYS);
    let id: KeyId = r.parse("id")?;
    r.id = id.to_string();
    Ok(KeyRecord {
        team: r.parse("team")?,
        user: r.parse("user_id")?,
        name: r.get("name")?,
        hash: r.get("hash")?,
        role: r.parse("role")?,
        scopes: r.scopes("scopes")?,
        created_at: r.time("created_at")?,
        expires_at: r.optional_time("expires_at")?,
        revoked_at: r.optional_time("revoked_at")?,
        id,
    })
}

pub(super) fn secret_from_row(row: &SqliteRow) -> Result<SecretRecord, StoreError> {
    let mut r = RowReader::new(row, SECRETS);
    let name: String = r.get("name")?;
    r.id = name.clone();
    Ok(SecretRecord {
        team: r.parse("team")?,
        ciphertext: r.get("ciphertext")?,
        nonce: r.get("nonce")?,
        created_at: r.time("created_at")?,
        created_by: r.parse("created_by")?,
        updated_at: r.time("updated_at")?,
        updated_by: r.parse("updated_by")?,
        version: r.get::<i64>("version")?.try_into().unwrap_or(1),
        name,
    })
}

pub(super) fn volume_from_row(row: &SqliteRow) -> Result<crate::VolumeRecord, StoreError> {
    let mut r = RowReader::new(row, "volumes");
    let id: String = r.get("id")?;
    r.id = id.clone();
    Ok(crate::VolumeRecord {
        id: r.parse("id")?,
        team: r.parse("team")?,
        name: r.get("name")?,
        created_at: r.time("created_at")?,
        created_by: r.parse("created_by")?,
    })
}

pub(super) fn event_from_row(row: &SqliteRow) -> Result<EventRecord, StoreError> {
    let mut r = RowReader::new(row, EVENTS);
    let sandbox: SandboxId = r.parse("sandbox")?;
    let seq: i64 = r.get("seq")?;
    r.id = format!("{sandbox}#{seq}");
    let size: i64 = r.get("size")?;
    Ok(EventRecord {
        seq: u64::try_from(seq).map_err(|e| r.corrupt("seq", e))?,
        kind: r.get("type")?,
        source: r.get("source")?,
        data: r.get("data")?,
        dedupe_key: r.get("dedupe_key")?,
        size: u64::try_from(size).map_err(|e| r.corrupt("size", e))?,
        sha256: r.get("sha256")?,
        received_at: r.time("received_at")?,
        delivered_at: r.optional_time("delivered_at")?,
        acked_at: r.optional_time("acked_at")?,
        sandbox,
    })
}

pub(super) fn inbox_from_row(row: &SqliteRow) -> Result<crate::InboxRecord, StoreError> {
    let mut r = RowReader::new(row, INBOXES);
    let sandbox: SandboxId = r.parse("sandbox")?;
    r.id = sandbox.to_string();
    let seq = |r: &RowReader, name: &'static str| -> Result<u64, StoreError> {
        let v: i64 = r.get(name)?;
        u64::try_from(v).map_err(|e| r.corrupt(name, e))
    };
    let wake_on: String = r.get("wake_on")?;
    let handler: Option<String> = r.get("handler")?;
    let settings = warren_core::inbox::InboxSettings {
        wake: warren_core::inbox::WakePolicy {
            on: serde_json::from_str(&wake_on).map_err(|e| r.corrupt("wake_on", e))?,
        },
        handler: handler
            .map(|h| serde_json::from_str(&h))
            .transpose()
            .map_err(|e| r.corrupt("handler", e))?,
    };
    Ok(crate::InboxRecord {
        last_seq: seq(&r, "last_seq")?,
        acked_seq: seq(&r, "acked_seq")?,
        settings,
        sandbox,
    })
}

/// An inbox's settings as the columns `wake_on` and `handler` hold them.
pub(super) fn encode_inbox(
    settings: &warren_core::inbox::InboxSettings,
) -> Result<(String, Option<String>), StoreError> {
    let encode = |source| StoreError::Encode {
        what: "inbox settings",
        source,
    };
    let wake_on = serde_json::to_string(&settings.wake.on).map_err(encode)?;
    let handler = settings
        .handler
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(encode)?;
    Ok((wake_on, handler))
}

pub(super) fn grant_from_row(row: &SqliteRow) -> Result<GrantRecord, StoreError> {
    let mut r = RowReader::new(row, GRANTS);
    let id: String = r.get("id")?;
    r.id = id.clone();
    Ok(GrantRecord {
        sandbox: r.parse("sandbox")?,
        kind: r.parse("kind")?,
        key: r.parse("key_id")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
        id,
    })
}

pub(super) fn team_from_row(row: &SqliteRow) -> Result<TeamRecord, StoreError> {
    let mut r = RowReader::new(row, TEAMS);
    let id: TeamId = r.parse("id")?;
    r.id = id.to_string();
    let operator: i64 = r.get("operator")?;
    Ok(TeamRecord {
        name: r.get("name")?,
        operator: operator == 1,
        created_at: r.time("created_at")?,
        id,
    })
}

pub(super) fn user_from_row(row: &SqliteRow) -> Result<UserRecord, StoreError> {
    let mut r = RowReader::new(row, USERS);
    let id: UserId = r.parse("id")?;
    r.id = id.to_string();
    Ok(UserRecord {
        team: r.parse("team")?,
        name: r.get("name")?,
        created_at: r.time("created_at")?,
        id,
    })
}

/// A key's scopes as stored: a JSON array of names, or NULL.
pub(super) fn encode_scopes(scopes: Option<&[Scope]>) -> Result<Option<String>, StoreError> {
    scopes
        .map(|s| {
            serde_json::to_string(s).map_err(|source| StoreError::Encode {
                what: "scopes",
                source,
            })
        })
        .transpose()
}

/// Decodes a state read on its own (e.g. after a lost compare-and-set).
pub(super) fn parse_state(id: &SandboxId, text: &str) -> Result<SandboxState, StoreError> {
    text.parse().map_err(|e| StoreError::Corrupt {
        table: SANDBOXES,
        detail: format!("row {id}, column state: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_down_before_the_epoch() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(-1).expect("valid time");
        assert_eq!(to_millis(t), -1);
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_999_999).expect("valid time");
        assert_eq!(to_millis(t), 1);
    }
}
