//! API key rows. Only the keyed hash of a secret is stored.

use sqlx::SqlitePool;
use time::OffsetDateTime;
use warren_core::KeyId;

use super::codec::{key_from_row, to_millis};
use crate::{KeyRecord, StoreError};

pub(super) async fn insert(writer: &SqlitePool, key: KeyRecord) -> Result<(), StoreError> {
    let result = sqlx::query(
        "INSERT INTO api_keys (id, name, hash, created_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(key.id.as_str())
    .bind(&key.name)
    .bind(&key.hash)
    .bind(to_millis(key.created_at))
    .bind(key.revoked_at.map(to_millis))
    .execute(writer)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            Err(StoreError::AlreadyExists(format!("API key {}", key.id)))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn get(reader: &SqlitePool, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
    sqlx::query("SELECT * FROM api_keys WHERE id = ?1")
        .bind(id.as_str())
        .fetch_optional(reader)
        .await?
        .map(|row| key_from_row(&row))
        .transpose()
}

pub(super) async fn list(reader: &SqlitePool) -> Result<Vec<KeyRecord>, StoreError> {
    sqlx::query("SELECT * FROM api_keys ORDER BY created_at, rowid")
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
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2")
            .bind(to_millis(at))
            .bind(id.as_str())
            .execute(writer)
            .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("API key {id}")));
    }
    Ok(())
}
