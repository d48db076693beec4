//! Which template versions rows name: what the daemon must keep on disk.

use sqlx::SqlitePool;

use crate::StoreError;

/// Distinct (template, version) of live sandboxes and of snapshots whose
/// image still exists.
pub(super) async fn in_use(
    reader: &SqlitePool,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT template, template_version FROM sandboxes
             WHERE state NOT IN ('killed', 'failed')
         UNION
         SELECT template, template_version FROM snapshots WHERE deleted_at IS NULL",
    )
    .fetch_all(reader)
    .await?;
    Ok(rows)
}

/// Fills in `version` where rows of `template` name none.
pub(super) async fn pin(
    writer: &SqlitePool,
    template: &str,
    version: &str,
) -> Result<u64, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut changed = 0;
    for statement in [
        "UPDATE sandboxes SET template_version = ?2 WHERE template = ?1 AND template_version IS NULL",
        "UPDATE snapshots SET template_version = ?2 WHERE template = ?1 AND template_version IS NULL",
    ] {
        changed += sqlx::query(statement)
            .bind(template)
            .bind(version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(changed)
}
