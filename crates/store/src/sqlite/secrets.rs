//! Secret rows: ciphertexts only, keyed by (team, name). Setting a secret
//! that exists replaces its ciphertext, keeps its creation time and creator
//! and counts one more version, in one `BEGIN IMMEDIATE` transaction, which
//! also decides whether the [`SecretWrite`] allows what it finds.

use sqlx::SqlitePool;
use warren_core::TeamId;

use super::codec::{secret_from_row, to_millis};
use super::teams::insert_error;
use crate::{SecretRecord, SecretWrite, StoreError, StoredSecret};

pub(super) async fn put(
    writer: &SqlitePool,
    new: &SecretRecord,
    write: SecretWrite,
) -> Result<StoredSecret, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let select = || {
        sqlx::query("SELECT * FROM secrets WHERE team = ?1 AND name = ?2")
            .bind(new.team.as_str())
            .bind(&new.name)
    };
    let exists = select().fetch_optional(&mut *tx).await?.is_some();
    match (write, exists) {
        (SecretWrite::Create, true) => {
            return Err(StoreError::AlreadyExists(format!("secret '{}'", new.name)));
        }
        (SecretWrite::Replace, false) => {
            return Err(StoreError::NotFound(format!("secret '{}'", new.name)));
        }
        _ => {}
    }
    if exists {
        sqlx::query(
            "UPDATE secrets SET ciphertext = ?3, nonce = ?4, updated_at = ?5, updated_by = ?6,
                                version = version + 1
             WHERE team = ?1 AND name = ?2",
        )
        .bind(new.team.as_str())
        .bind(&new.name)
        .bind(&new.ciphertext)
        .bind(&new.nonce)
        .bind(to_millis(new.updated_at))
        .bind(new.updated_by.as_str())
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO secrets (team, name, ciphertext, nonce, created_at, created_by,
                                  updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(new.team.as_str())
        .bind(&new.name)
        .bind(&new.ciphertext)
        .bind(&new.nonce)
        .bind(to_millis(new.created_at))
        .bind(new.created_by.as_str())
        .bind(to_millis(new.updated_at))
        .bind(new.updated_by.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            insert_error(
                e,
                &format!("secret '{}'", new.name),
                &format!("team {}", new.team),
            )
        })?;
    }
    let record = secret_from_row(&select().fetch_one(&mut *tx).await?)?;
    tx.commit().await?;
    Ok(StoredSecret {
        record,
        created: !exists,
    })
}

pub(super) async fn get(
    reader: &SqlitePool,
    team: &TeamId,
    name: &str,
) -> Result<Option<SecretRecord>, StoreError> {
    sqlx::query("SELECT * FROM secrets WHERE team = ?1 AND name = ?2")
        .bind(team.as_str())
        .bind(name)
        .fetch_optional(reader)
        .await?
        .map(|row| secret_from_row(&row))
        .transpose()
}

pub(super) async fn list(
    reader: &SqlitePool,
    team: &TeamId,
) -> Result<Vec<SecretRecord>, StoreError> {
    sqlx::query("SELECT * FROM secrets WHERE team = ?1 ORDER BY name")
        .bind(team.as_str())
        .fetch_all(reader)
        .await?
        .iter()
        .map(secret_from_row)
        .collect()
}

pub(super) async fn delete(
    writer: &SqlitePool,
    team: &TeamId,
    name: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM secrets WHERE team = ?1 AND name = ?2")
        .bind(team.as_str())
        .bind(name)
        .execute(writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("secret '{name}'")));
    }
    Ok(())
}
