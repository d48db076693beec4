//! Network slot allocation: lowest free, held by a killed or failed sandbox
//! until its teardown is confirmed (`release_slot`), unique under
//! concurrency (within one store and across two stores on one file).

use crate::common;

use std::collections::BTreeSet;

use common::{TestDb, new_sandbox, running};
use warren_core::{SandboxId, SandboxState as S};
use warren_store::{SandboxFilter, SqliteConfig, Store, StoreError};

#[tokio::test]
async fn slots_are_lowest_free_and_reused_only_after_release() {
    let db = TestDb::new().await;
    let mut sandboxes = Vec::new();
    for expected in 0..5 {
        let s = running(&db.store, new_sandbox()).await;
        assert_eq!(s.net_slot, expected);
        sandboxes.push(s);
    }
    db.store
        .transition(&sandboxes[3].id, S::Running, S::Killed)
        .await
        .unwrap();
    db.store
        .transition(&sandboxes[1].id, S::Running, S::Failed)
        .await
        .unwrap();
    // Their networks may still be up: the slots stay taken.
    let before_release = db.store.create_sandbox(new_sandbox()).await.unwrap();
    assert_eq!(before_release.net_slot, 5);

    db.store.release_slot(&sandboxes[3].id).await.unwrap();
    db.store.release_slot(&sandboxes[1].id).await.unwrap();
    let mut next = Vec::new();
    for _ in 0..3 {
        next.push(
            db.store
                .create_sandbox(new_sandbox())
                .await
                .unwrap()
                .net_slot,
        );
    }
    assert_eq!(next, vec![1, 3, 6]);

    // The dead sandboxes still show the slot they had.
    let killed = db
        .store
        .get_sandbox(&sandboxes[3].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((killed.state, killed.net_slot), (S::Killed, 3));
}

#[tokio::test]
async fn paused_sandboxes_keep_their_slot() {
    let db = TestDb::new().await;
    let s = running(&db.store, new_sandbox()).await;
    db.store
        .transition(&s.id, S::Running, S::Pausing)
        .await
        .unwrap();
    db.store
        .transition(&s.id, S::Pausing, S::Paused)
        .await
        .unwrap();
    assert_eq!(
        db.store
            .create_sandbox(new_sandbox())
            .await
            .unwrap()
            .net_slot,
        1
    );
}

#[tokio::test]
async fn only_dead_sandboxes_release_their_slot() {
    let db = TestDb::new().await;
    let live = running(&db.store, new_sandbox()).await;
    let err = db.store.release_slot(&live.id).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotTerminal(S::Running)),
        "{err:?}"
    );
    let err = db
        .store
        .release_slot(&SandboxId::generate())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    // The refused release freed nothing.
    assert_eq!(
        db.store
            .create_sandbox(new_sandbox())
            .await
            .unwrap()
            .net_slot,
        1
    );
}

#[tokio::test]
async fn releasing_twice_frees_the_slot_once() {
    let db = TestDb::new().await;
    let s = running(&db.store, new_sandbox()).await;
    db.store
        .transition(&s.id, S::Running, S::Killed)
        .await
        .unwrap();
    db.store.release_slot(&s.id).await.unwrap();
    let reused = db.store.create_sandbox(new_sandbox()).await.unwrap();
    assert_eq!(reused.net_slot, 0);

    db.store.release_slot(&s.id).await.unwrap();
    // Slot 0 now belongs to `reused`, whatever the old row says.
    assert_eq!(
        db.store
            .create_sandbox(new_sandbox())
            .await
            .unwrap()
            .net_slot,
        1
    );
}

#[tokio::test]
async fn unreleased_lists_exactly_the_dead_sandboxes_still_holding_a_slot() {
    let db = TestDb::new().await;
    let live = running(&db.store, new_sandbox()).await;
    let killed = running(&db.store, new_sandbox()).await;
    let failed = db.store.create_sandbox(new_sandbox()).await.unwrap();
    let released = running(&db.store, new_sandbox()).await;
    assert!(db.store.unreleased_sandboxes().await.unwrap().is_empty());

    db.store
        .transition(&killed.id, S::Running, S::Killed)
        .await
        .unwrap();
    db.store
        .transition(&failed.id, S::Creating, S::Failed)
        .await
        .unwrap();
    db.store
        .transition(&released.id, S::Running, S::Killed)
        .await
        .unwrap();
    db.store.release_slot(&released.id).await.unwrap();
    assert_eq!(
        db.store.unreleased_sandboxes().await.unwrap(),
        vec![killed.id.clone(), failed.id.clone()]
    );

    // Killing a failed sandbox neither releases nor re-takes its slot.
    db.store
        .transition(&failed.id, S::Failed, S::Killed)
        .await
        .unwrap();
    db.store.release_slot(&killed.id).await.unwrap();
    assert_eq!(
        db.store.unreleased_sandboxes().await.unwrap(),
        vec![failed.id.clone()]
    );
    db.store.release_slot(&failed.id).await.unwrap();
    assert!(db.store.unreleased_sandboxes().await.unwrap().is_empty());
    assert_eq!(
        db.store.get_sandbox(&live.id).await.unwrap().unwrap().state,
        S::Running
    );
}

#[tokio::test]
async fn creating_beyond_the_maximum_is_slots_exhausted() {
    let db = TestDb::with_config(SqliteConfig {
        max_net_slots: 3,
        ..SqliteConfig::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(db.store.create_sandbox(new_sandbox()).await.unwrap());
    }
    let rejected = new_sandbox();
    let err = db.store.create_sandbox(rejected.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::SlotsExhausted), "{err:?}");
    assert_eq!(db.store.get_sandbox(&rejected.id).await.unwrap(), None);

    db.store
        .transition(&held[2].id, S::Creating, S::Killed)
        .await
        .unwrap();
    let err = db.store.create_sandbox(rejected.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::SlotsExhausted), "{err:?}");

    db.store.release_slot(&held[2].id).await.unwrap();
    assert_eq!(db.store.create_sandbox(rejected).await.unwrap().net_slot, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_creates_get_fifty_distinct_lowest_slots() {
    let db = TestDb::new().await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(async move { store.create_sandbox(new_sandbox()).await })
        })
        .collect();
    let mut slots = BTreeSet::new();
    for task in tasks {
        let record = task.await.unwrap().unwrap();
        assert!(
            slots.insert(record.net_slot),
            "slot {} given twice",
            record.net_slot
        );
    }
    assert_eq!(slots, (0..50).collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_never_share_a_slot() {
    let db = TestDb::new().await;
    let other = db.reopen().await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = if i % 2 == 0 {
                db.store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                let created = store.create_sandbox(new_sandbox()).await?;
                // Kill every third while others are allocating, and release
                // every other one of those.
                if i % 3 == 0 {
                    store
                        .transition(&created.id, S::Creating, S::Killed)
                        .await?;
                    if i % 2 == 0 {
                        store.release_slot(&created.id).await?;
                    }
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let live = db
        .store
        .list_sandboxes(&SandboxFilter::default())
        .await
        .unwrap();
    let unreleased = db.store.unreleased_sandboxes().await.unwrap();
    let killed = db
        .store
        .list_sandboxes(&SandboxFilter {
            states: vec![S::Killed],
            ..SandboxFilter::default()
        })
        .await
        .unwrap();
    assert_eq!((live.len(), killed.len(), unreleased.len()), (26, 14, 7));

    let holders = live
        .iter()
        .chain(killed.iter().filter(|s| unreleased.contains(&s.id)));
    let slots: BTreeSet<u32> = holders.clone().map(|s| s.net_slot).collect();
    assert_eq!(slots.len(), holders.count(), "two holders share a slot");
}
