//! Volume rows and sandbox mounts (see `crate::volume`). Delete and attach
//! each run in one `BEGIN IMMEDIATE` transaction, so a delete that finds
//! no live mount and an attach that finds the volume cannot interleave.

use sqlx::SqlitePool;
use warren_core::{SandboxId, TeamId, VolumeId};

use super::codec::{to_millis, volume_from_row};
use super::teams::insert_error;
use crate::{StoreError, VolumeMountRecord, VolumeRecord};

pub(super) async fn create(
    writer: &SqlitePool,
    v: &VolumeRecord,
) -> Result<VolumeRecord, StoreError> {
    let row = sqlx::query(
        "INSERT INTO volumes (id, team, name, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING *",
    )
    .bind(v.id.as_str())
    .bind(v.team.as_str())
    .bind(&v.name)
    .bind(to_millis(v.created_at))
    .bind(v.created_by.as_str())
    .fetch_one(writer)
    .await
    .map_err(|e| {
        insert_error(
            e,
            &format!("volume '{}'", v.name),
            &format!("team {}", v.team),
        )
    })?;
    volume_from_row(&row)
}

pub(super) async fn get(
    reader: &SqlitePool,
    team: &TeamId,
    name: &str,
) -> Result<Option<VolumeRecord>, StoreError> {
    sqlx::query("SELECT * FROM volumes WHERE team = ?1 AND name = ?2")
        .bind(team.as_str())
        .bind(name)
        .fetch_optional(reader)
        .await?
        .map(|row| volume_from_row(&row))
        .transpose()
}

pub(super) async fn list(
    reader: &SqlitePool,
    team: &TeamId,
) -> Result<Vec<VolumeRecord>, StoreError> {
    sqlx::query("SELECT * FROM volumes WHERE team = ?1 ORDER BY name")
        .bind(team.as_str())
        .fetch_all(reader)
        .await?
        .iter()
        .map(volume_from_row)
        .collect()
}

pub(super) async fn delete(
    writer: &SqlitePool,
    team: &TeamId,
    name: &str,
) -> Result<VolumeRecord, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let Some(row) = sqlx::query("SELECT * FROM volumes WHERE team = ?1 AND name = ?2")
        .bind(team.as_str())
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Err(StoreError::NotFound(format!("volume '{name}'")));
    };
    let volume = volume_from_row(&row)?;
    let users: Vec<(String,)> = sqlx::query_as(
        "SELECT s.id FROM sandbox_volumes m JOIN sandboxes s ON s.id = m.sandbox
         WHERE m.volume = ?1 AND s.state NOT IN ('killed', 'failed') ORDER BY s.id LIMIT 5",
    )
    .bind(volume.id.as_str())
    .fetch_all(&mut *tx)
    .await?;
    if !users.is_empty() {
        let ids: Vec<String> = users.into_iter().map(|(id,)| id).collect();
        return Err(StoreError::InUse(format!(
            "volume '{name}' is mounted by live sandboxes ({}): kill them first",
            ids.join(", ")
        )));
    }
    sqlx::query("DELETE FROM volumes WHERE id = ?1")
        .bind(volume.id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(volume)
}

pub(super) async fn attach(
    writer: &SqlitePool,
    sandbox: &SandboxId,
    mounts: &[(VolumeId, String)],
) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    for (volume, path) in mounts {
        sqlx::query("INSERT INTO sandbox_volumes (sandbox, volume, path) VALUES (?1, ?2, ?3)")
            .bind(sandbox.as_str())
            .bind(volume.as_str())
            .bind(path)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                insert_error(
                    e,
                    &format!("a mount at {path} in sandbox {sandbox}"),
                    &format!("volume {volume} or sandbox {sandbox}"),
                )
            })?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn of_sandbox(
    reader: &SqlitePool,
    sandbox: &SandboxId,
) -> Result<Vec<VolumeMountRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT v.*, m.path AS mount_path FROM sandbox_volumes m
         JOIN volumes v ON v.id = m.volume WHERE m.sandbox = ?1 ORDER BY m.path",
    )
    .bind(sandbox.as_str())
    .fetch_all(reader)
    .await?;
    rows.iter()
        .map(|row| {
            use sqlx::Row;
            Ok(VolumeMountRecord {
                volume: volume_from_row(row)?,
                path: row.try_get("mount_path")?,
            })
        })
        .collect()
}
