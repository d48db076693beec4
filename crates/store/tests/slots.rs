//! Network slot allocation: lowest free, freed by kill and fail, unique
//! under concurrency (within one store and across two stores on one file).

mod common;

use std::collections::BTreeSet;

use common::{TestDb, new_sandbox, running};
use warren_core::SandboxState as S;
use warren_store::{SqliteConfig, Store, StoreError};

#[tokio::test]
async fn slots_are_lowest_free_and_reused_after_kill_or_fail() {
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

    let next: Vec<u32> = {
        let mut slots = Vec::new();
        for _ in 0..3 {
            slots.push(
                db.store
                    .create_sandbox(new_sandbox())
                    .await
                    .unwrap()
                    .net_slot,
            );
        }
        slots
    };
    assert_eq!(next, vec![1, 3, 5]);

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
                // Free every third slot again while others are allocating.
                if i % 3 == 0 {
                    store
                        .transition(&created.id, S::Creating, S::Killed)
                        .await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let live = db.store.list_sandboxes(&Default::default()).await.unwrap();
    let slots: BTreeSet<u32> = live.iter().map(|s| s.net_slot).collect();
    assert_eq!(slots.len(), live.len(), "two live sandboxes share a slot");
    assert_eq!(live.len(), 40 - 14);
}
