//! Snapshot rows: the pause commit, names, lineage, garbage collection and
//! the idle and paused-retention queries.

use crate::common;

use std::collections::BTreeMap;

use common::{TestDb, new_sandbox, running};
use time::{Duration, OffsetDateTime};
use warren_core::{KeyId, Limits, PauseMode, Persistence, SandboxState as S, SnapshotId};
use warren_store::{NewSnapshot, SandboxRecord, SnapshotKind, Store, StoreError};

fn snapshot(of: &SandboxRecord, kind: SnapshotKind, name: Option<&str>) -> NewSnapshot {
    NewSnapshot {
        id: SnapshotId::generate(),
        sandbox_id: of.id.clone(),
        team: of.team.clone(),
        kind,
        name: name.map(str::to_owned),
        template: of.template.clone(),
        template_version: of.template_version.clone(),
        limits: Limits::default(),
        env: BTreeMap::from([("A".to_owned(), "1".to_owned())]),
        parent_snapshot: None,
        size_bytes: 4096,
        created_by: KeyId::generate(),
        network: of.network.clone(),
    }
}

async fn unreferenced(db: &TestDb) -> Vec<SnapshotId> {
    let rows = db.store.unreferenced_snapshots().await.unwrap();
    rows.into_iter().map(|s| s.id).collect()
}

#[tokio::test]
async fn pause_commits_the_row_and_the_state_together() {
    let db = TestDb::new().await;
    let sb = running(&db.store, new_sandbox()).await;
    let snap = snapshot(&sb, SnapshotKind::Pause, None);
    // Not pausing: nothing is written.
    let err = db
        .store
        .commit_pause(&sb.id, snap.clone(), PauseMode::Full)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                actual: S::Running,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(db.store.get_snapshot(&snap.id).await.unwrap(), None);

    db.store
        .transition(&sb.id, S::Running, S::Pausing)
        .await
        .unwrap();
    assert_eq!(
        db.store
            .get_sandbox(&sb.id)
            .await
            .unwrap()
            .unwrap()
            .pause_mode,
        None
    );
    let paused = db
        .store
        .commit_pause(&sb.id, snap.clone(), PauseMode::Filesystem)
        .await
        .unwrap();
    assert_eq!(paused.state, S::Paused);
    assert_eq!(paused.pause_mode, Some(PauseMode::Filesystem));
    assert_eq!(paused.paused_snapshot.as_ref(), Some(&snap.id));
    let row = db.store.get_snapshot(&snap.id).await.unwrap().unwrap();
    assert_eq!(row.size_bytes, 4096);
    assert_eq!(row.env.get("A").map(String::as_str), Some("1"));
    // Survives a reopen (another process, or a restarted daemon).
    let again = db.reopen().await;
    let reread = again.get_sandbox(&sb.id).await.unwrap().unwrap();
    assert_eq!(reread.state, S::Paused);
    assert_eq!(reread.pause_mode, Some(PauseMode::Filesystem));
    assert!(
        unreferenced(&db).await.is_empty(),
        "a paused sandbox's image is in use"
    );

    db.store
        .transition(&sb.id, S::Paused, S::Resuming)
        .await
        .unwrap();
    let resumed = db.store.finish_resume(&sb.id).await.unwrap();
    assert_eq!(resumed.state, S::Running);
    assert_eq!(
        resumed.pause_mode, None,
        "a running sandbox has no pause mode"
    );
    assert!(resumed.expires_at > OffsetDateTime::now_utc() + Duration::seconds(200));
    assert_eq!(unreferenced(&db).await, vec![snap.id.clone()]);
    db.store.mark_snapshot_deleted(&snap.id).await.unwrap();
    db.store.mark_snapshot_deleted(&snap.id).await.unwrap();
    assert!(unreferenced(&db).await.is_empty());
    assert!(db.store.live_snapshot_ids().await.unwrap().is_empty());
}

#[tokio::test]
async fn names_are_unique_per_sandbox_until_deleted() {
    let db = TestDb::new().await;
    let a = running(&db.store, new_sandbox()).await;
    let b = running(&db.store, new_sandbox()).await;
    let first = db
        .store
        .insert_snapshot(snapshot(&a, SnapshotKind::Named, Some("before")))
        .await
        .unwrap();
    let clash = db
        .store
        .insert_snapshot(snapshot(&a, SnapshotKind::Named, Some("before")))
        .await
        .unwrap_err();
    assert!(matches!(clash, StoreError::AlreadyExists(_)), "{clash:?}");
    db.store
        .insert_snapshot(snapshot(&b, SnapshotKind::Named, Some("before")))
        .await
        .unwrap();
    db.store.mark_snapshot_deleted(&first.id).await.unwrap();
    db.store
        .insert_snapshot(snapshot(&a, SnapshotKind::Named, Some("before")))
        .await
        .unwrap();
    let listed = db.store.list_snapshots(&a.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].deleted_at.is_some() && listed[1].deleted_at.is_none());
}

#[tokio::test]
async fn named_snapshots_go_with_their_sandbox_and_lineage_stays() {
    let db = TestDb::new().await;
    let parent = running(&db.store, new_sandbox()).await;
    let named = db
        .store
        .insert_snapshot(snapshot(&parent, SnapshotKind::Named, Some("n")))
        .await
        .unwrap();
    let fork = db
        .store
        .insert_snapshot(snapshot(&parent, SnapshotKind::Fork, None))
        .await
        .unwrap();
    let mut child = new_sandbox();
    child.source_snapshot = Some(fork.id.clone());
    let child = db.store.create_sandbox(child).await.unwrap();
    assert!(
        unreferenced(&db).await.is_empty(),
        "a branch is still being created"
    );
    db.store
        .transition(&child.id, S::Creating, S::Running)
        .await
        .unwrap();
    // A fresh fork image is kept a while (its row is written before its
    // branches' rows); an older one goes once no branch is being created.
    assert!(unreferenced(&db).await.is_empty(), "a fresh fork image");
    sqlx::query("UPDATE snapshots SET created_at = created_at - 600000 WHERE id = ?1")
        .bind(fork.id.as_str())
        .execute(&db.raw().await)
        .await
        .unwrap();
    assert_eq!(unreferenced(&db).await, vec![fork.id.clone()]);
    assert_eq!(
        db.store.sandboxes_from_snapshot(&fork.id).await.unwrap(),
        vec![child.id.clone()]
    );
    db.store
        .transition(&parent.id, S::Running, S::Killed)
        .await
        .unwrap();
    assert_eq!(unreferenced(&db).await, vec![fork.id, named.id]);
}

#[tokio::test]
async fn idle_and_paused_retention() {
    let db = TestDb::new().await;
    let mut idle = new_sandbox();
    idle.persistence = Persistence {
        idle_timeout_s: Some(60),
        paused_ttl_s: 120,
        ..Persistence::default()
    };
    let idle = running(&db.store, idle).await;
    let plain = running(&db.store, new_sandbox()).await;
    let now = OffsetDateTime::now_utc();
    assert!(db.store.idle_sandboxes(now).await.unwrap().is_empty());
    let later = now + Duration::seconds(61);
    let found = db.store.idle_sandboxes(later).await.unwrap();
    assert_eq!(
        found.iter().map(|s| &s.id).collect::<Vec<_>>(),
        vec![&idle.id]
    );
    db.store.touch_sandbox(&idle.id, later).await.unwrap();
    assert!(db.store.idle_sandboxes(later).await.unwrap().is_empty());

    // Paused: out of the running lifetime, into its own retention.
    db.store
        .transition(&idle.id, S::Running, S::Pausing)
        .await
        .unwrap();
    db.store
        .commit_pause(
            &idle.id,
            snapshot(&idle, SnapshotKind::Pause, None),
            PauseMode::Full,
        )
        .await
        .unwrap();
    let far = now + Duration::hours(1);
    assert_eq!(
        db.store.expired_sandboxes(far).await.unwrap(),
        vec![plain.id]
    );
    assert!(db.store.expired_paused(now).await.unwrap().is_empty());
    assert_eq!(db.store.expired_paused(far).await.unwrap(), vec![idle.id]);
}
