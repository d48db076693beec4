//! Template snapshot rows: one per template, replaced and deleted by
//! image, kept across reopening, and live for the snapshot store's sweep.

use crate::common;

use common::{TestDb, millis};
use time::OffsetDateTime;
use warren_core::{Limits, SandboxId, SnapshotId};
use warren_store::{Store, TemplateSnapshotRecord};

fn row(template: &str, key: &str) -> TemplateSnapshotRecord {
    TemplateSnapshotRecord {
        template: template.to_owned(),
        template_key: key.to_owned(),
        snapshot: SnapshotId::generate(),
        maker: SandboxId::generate(),
        limits: Limits::default(),
        size_bytes: 1 << 20,
        created_at: millis(OffsetDateTime::now_utc()),
    }
}

#[tokio::test]
async fn one_row_per_template_replaced_by_the_next_image() {
    let db = TestDb::new().await;
    let first = row("code-interpreter", "k1");
    assert_eq!(db.store.put_template_snapshot(&first).await.unwrap(), None);
    let second = row("code-interpreter", "k2");
    let replaced = db.store.put_template_snapshot(&second).await.unwrap();
    assert_eq!(replaced, Some(first.clone()));
    let other = row("other", "k1");
    db.store.put_template_snapshot(&other).await.unwrap();

    let reopened = db.reopen().await;
    assert_eq!(
        reopened
            .template_snapshot("code-interpreter")
            .await
            .unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        reopened.template_snapshots().await.unwrap(),
        vec![second.clone(), other.clone()]
    );
    let live = reopened.live_snapshot_ids().await.unwrap();
    assert!(live.contains(&second.snapshot) && live.contains(&other.snapshot));
    assert!(!live.contains(&first.snapshot));
}

#[tokio::test]
async fn a_delete_names_the_image_it_drops() {
    let db = TestDb::new().await;
    let old = row("code-interpreter", "k1");
    db.store.put_template_snapshot(&old).await.unwrap();
    let new = row("code-interpreter", "k2");
    db.store.put_template_snapshot(&new).await.unwrap();
    // A stale delete (of the replaced image) leaves the new row alone.
    let stale = db
        .store
        .delete_template_snapshot("code-interpreter", &old.snapshot)
        .await
        .unwrap();
    assert!(!stale);
    assert!(
        db.store
            .delete_template_snapshot("code-interpreter", &new.snapshot)
            .await
            .unwrap()
    );
    assert_eq!(
        db.store
            .template_snapshot("code-interpreter")
            .await
            .unwrap(),
        None
    );
    assert!(
        !db.store
            .live_snapshot_ids()
            .await
            .unwrap()
            .contains(&new.snapshot)
    );
}
