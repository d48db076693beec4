//! API key rows. Only the keyed hash of a secret is stored.

use sqlx::SqlitePool;
use time::OffsetDateTime;
use warren_core::{KeyId, TeamId};

use super::codec::{encode_scopes, key_from_row, to_millis};
use super::teams::insert_error;
use crate::{KeyRecord, StoreError};

pub(super) async fn insert<'c, E>(db: E, key: &KeyRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO api_keys (id, team, user_id, name, hash, role, scopes,
                               created_at, expires_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .bind(key.id.as_str())
    .bind(key.team.as_str())
    .bind(key.user.as_str())
    .bind(&key.name)
    .bind(&key.hash)
    .bind(key.role.as_str())
    .bind(encode_scopes(key.scopes.as_deref())?)
    .bind(to_millis(key.created_at))
    .bind(key.expires_at.map(to_millis))
    .bind(key.revoked_at.map(to_millis))
    .execute(db)
    .await
    .map_err(|e| insert_error(e, &format!("API key {}", key.id), "its team or user"))?;
    Ok(())
}

pub(super) async fn get(reader: &SqlitePool, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
    sqlx::query("SELECT * FROM api_keys WHERE id = ?1")
        .bind(id.as_str())
        .fetch_optional(reader)
        .await?
        .map(|row| key_from_row(&row))
        .transpose()
}

pub(super) async fn list(
    reader: &SqlitePool,
    team: Option<&TeamId>,
) -> Result<Vec<KeyRecord>, StoreError> {
    sqlx::query("SELECT * FROM api_keys WHERE (?1 IS NULL OR team = ?1) ORDER BY created_at, rowid")
        .bind(team.map(|t| t.as_str()))
        .fetch_all(reader)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
}

pub(super) async fn revoke(
    writer: &SqlitePool,
    id: &KeyId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2")
            .bind(to_millis(at))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("API key {id}")));
    }
    // Its grants die with it (they are also refused at use while it is
    // revoked; this keeps none behind).
    sqlx::query("DELETE FROM grants WHERE key_id = ?1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
