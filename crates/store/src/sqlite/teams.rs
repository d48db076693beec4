//! Team and user rows. A team is created together with its first user and
//! that user's key, in one transaction.

use sqlx::SqlitePool;
use warren_core::{TeamId, UserId};

use super::codec::{team_from_row, to_millis, user_from_row};
use super::keys;
use crate::{KeyRecord, StoreError, TeamRecord, UserRecord};

/// Maps an insert's constraint failures: a unique violation is
/// `AlreadyExists` for `what`, a foreign-key one `NotFound` for `parent`.
pub(super) fn insert_error(e: sqlx::Error, what: &str, parent: &str) -> StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => StoreError::AlreadyExists(what.to_owned()),
        Some(d) if d.is_foreign_key_violation() => StoreError::NotFound(parent.to_owned()),
        _ => e.into(),
    }
}

async fn insert_user<'c, E>(db: E, user: &UserRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query("INSERT INTO users (id, team, name, created_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(user.id.as_str())
        .bind(user.team.as_str())
        .bind(&user.name)
        .bind(to_millis(user.created_at))
        .execute(db)
        .await
        .map_err(|e| {
            insert_error(
                e,
                &format!("user '{}' in team {}", user.name, user.team),
                &format!("team {}", user.team),
            )
        })?;
    Ok(())
}

pub(super) async fn create(
    writer: &SqlitePool,
    team: &TeamRecord,
    admin: &UserRecord,
    key: &KeyRecord,
) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query("INSERT INTO teams (id, name, operator, created_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(team.id.as_str())
        .bind(&team.name)
        .bind(i64::from(team.operator))
        .bind(to_millis(team.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| insert_error(e, &format!("team '{}'", team.name), "team"))?;
    insert_user(&mut *tx, admin).await?;
    keys::insert(&mut *tx, key).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(
    reader: &SqlitePool,
    id: &TeamId,
) -> Result<Option<TeamRecord>, StoreError> {
    sqlx::query("SELECT * FROM teams WHERE id = ?1")
        .bind(id.as_str())
        .fetch_optional(reader)
        .await?
        .map(|row| team_from_row(&row))
        .transpose()
}

pub(super) async fn list(reader: &SqlitePool) -> Result<Vec<TeamRecord>, StoreError> {
    sqlx::query("SELECT * FROM teams ORDER BY created_at, rowid")
        .fetch_all(reader)
        .await?
        .iter()
        .map(team_from_row)
        .collect()
}

pub(super) async fn add_user(writer: &SqlitePool, user: &UserRecord) -> Result<(), StoreError> {
    insert_user(writer, user).await
}

pub(super) async fn get_user(
    reader: &SqlitePool,
    id: &UserId,
) -> Result<Option<UserRecord>, StoreError> {
    sqlx::query("SELECT * FROM users WHERE id = ?1")
        .bind(id.as_str())
        .fetch_optional(reader)
        .await?
        .map(|row| user_from_row(&row))
        .transpose()
}

pub(super) async fn list_users(
    reader: &SqlitePool,
    team: &TeamId,
) -> Result<Vec<UserRecord>, StoreError> {
    sqlx::query("SELECT * FROM users WHERE team = ?1 ORDER BY created_at, rowid")
        .bind(team.as_str())
        .fetch_all(reader)
        .await?
        .iter()
        .map(user_from_row)
        .collect()
}
