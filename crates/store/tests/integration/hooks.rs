//! Hooks and timers: a hook with its subscriptions in one row set, per
//! team; seen delivery ids forgotten after their window; pending timers
//! bounded per sandbox, found when due, gone with their sandbox.

use crate::common;

use common::{TestDb, key, millis, new_sandbox, running, team_id};
use time::{Duration, OffsetDateTime};
use warren_core::{SandboxId, TeamId};
use warren_store::{HookKind, HookRecord, Store, StoreError, Subscription, TimerRecord};

fn hook(id: &str, sandbox: &SandboxId) -> HookRecord {
    HookRecord {
        id: id.into(),
        team: team_id(),
        kind: HookKind::Github,
        ciphertext: vec![1, 2, 3],
        nonce: vec![0; 24],
        created_by: key("k").id,
        created_at: millis(OffsetDateTime::now_utc()),
        accepted: 0,
        rejected: 0,
        last_delivery_at: None,
        subscriptions: vec![Subscription {
            id: 0,
            sandbox: sandbox.clone(),
            repository: Some("acme/app".into()),
            pull_request: Some(7),
            branch: None,
            events: vec!["check_suite".into(), "push".into()],
        }],
    }
}

fn timer(id: &str, sandbox: &SandboxId, fires_at: OffsetDateTime) -> TimerRecord {
    TimerRecord {
        id: id.into(),
        sandbox: sandbox.clone(),
        fires_at: millis(fires_at),
        kind: "reminder".into(),
        source: "timer".into(),
        data: "{}".into(),
        created_by: key("k").id,
        created_at: millis(OffsetDateTime::now_utc()),
    }
}

#[tokio::test]
async fn a_hook_keeps_its_subscriptions_and_counts_and_is_its_teams_alone() {
    let db = TestDb::new().await;
    let sbx = running(&db.store, new_sandbox()).await;
    db.store.insert_key(key("k")).await.unwrap();
    let h = hook("hk1", &sbx.id);
    db.store.insert_hook(h.clone()).await.unwrap();
    assert_eq!(db.store.get_hook("hk1").await.unwrap(), Some(h.clone()));
    assert!(matches!(
        db.store.insert_hook(h.clone()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let mut ghost = hook("hk2", &"sbx0000000000000000z".parse().unwrap());
    ghost.subscriptions[0].pull_request = None;
    assert!(matches!(
        db.store.insert_hook(ghost).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        db.store.get_hook("hk2").await.unwrap(),
        None,
        "nothing of a refused hook stays"
    );

    let at = millis(OffsetDateTime::now_utc());
    db.store.count_hook_delivery("hk1", true, at).await.unwrap();
    db.store
        .count_hook_delivery("hk1", false, at)
        .await
        .unwrap();
    db.store
        .count_hook_delivery("hk1", false, at)
        .await
        .unwrap();
    let got = db.store.get_hook("hk1").await.unwrap().unwrap();
    assert_eq!((got.accepted, got.rejected), (1, 2));
    assert_eq!(got.last_delivery_at, Some(at));

    assert_eq!(db.store.list_hooks(&team_id()).await.unwrap().len(), 1);
    let stranger: TeamId = "tstranger000".parse().unwrap();
    assert!(db.store.list_hooks(&stranger).await.unwrap().is_empty());
    assert!(matches!(
        db.store.delete_hook(&stranger, "hk1").await,
        Err(StoreError::NotFound(_))
    ));
    db.store.delete_hook(&team_id(), "hk1").await.unwrap();
    assert_eq!(db.store.get_hook("hk1").await.unwrap(), None);
}

#[tokio::test]
async fn seen_deliveries_are_remembered_for_their_window() {
    let db = TestDb::new().await;
    let sbx = running(&db.store, new_sandbox()).await;
    db.store.insert_key(key("k")).await.unwrap();
    db.store.insert_hook(hook("hk1", &sbx.id)).await.unwrap();
    let old = OffsetDateTime::now_utc() - Duration::days(8);
    let now = OffsetDateTime::now_utc();
    db.store
        .note_hook_delivery("hk1", "d-old", old)
        .await
        .unwrap();
    db.store
        .note_hook_delivery("hk1", "d-new", now)
        .await
        .unwrap();
    db.store
        .note_hook_delivery("hk1", "d-new", now)
        .await
        .unwrap();
    assert!(db.store.hook_delivery_seen("hk1", "d-old").await.unwrap());
    assert!(!db.store.hook_delivery_seen("hk2", "d-new").await.unwrap());
    // A hook deleted while a delivery was in flight: nothing to remember.
    db.store
        .note_hook_delivery("hk-gone", "d", now)
        .await
        .unwrap();
    assert!(!db.store.hook_delivery_seen("hk-gone", "d").await.unwrap());
    let gone = db
        .store
        .forget_hook_deliveries(now - Duration::days(7))
        .await
        .unwrap();
    assert_eq!(gone, 1);
    assert!(!db.store.hook_delivery_seen("hk1", "d-old").await.unwrap());
    assert!(db.store.hook_delivery_seen("hk1", "d-new").await.unwrap());
}

#[tokio::test]
async fn timers_are_bounded_found_when_due_and_deleted_once() {
    let db = TestDb::new().await;
    let a = running(&db.store, new_sandbox()).await;
    let b = running(&db.store, new_sandbox()).await;
    db.store.insert_key(key("k")).await.unwrap();
    let now = OffsetDateTime::now_utc();
    db.store
        .insert_timer(timer("t2", &a.id, now + Duration::hours(2)), 2)
        .await
        .unwrap();
    db.store
        .insert_timer(timer("t1", &a.id, now + Duration::hours(1)), 2)
        .await
        .unwrap();
    assert!(matches!(
        db.store.insert_timer(timer("t3", &a.id, now), 2).await,
        Err(StoreError::QuotaExceeded(_))
    ));
    db.store
        .insert_timer(timer("t4", &b.id, now + Duration::hours(3)), 2)
        .await
        .unwrap();
    let listed: Vec<_> = db.store.list_timers(&a.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t1", "t2"]
    );
    assert!(db.store.due_timers(now, 10).await.unwrap().is_empty());
    let due = db
        .store
        .due_timers(now + Duration::minutes(150), 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t1", "t2"]
    );
    assert!(matches!(
        db.store.delete_timer(&b.id, "t1").await,
        Err(StoreError::NotFound(_))
    ));
    db.store.delete_timer(&a.id, "t1").await.unwrap();
    assert!(matches!(
        db.store.delete_timer(&a.id, "t1").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        db.store
            .insert_timer(
                timer("t5", &"sbx0000000000000000z".parse().unwrap(), now),
                2
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn subscriptions_are_added_and_removed_within_the_team_and_the_limit() {
    let db = TestDb::new().await;
    let a = running(&db.store, new_sandbox()).await;
    let b = running(&db.store, new_sandbox()).await;
    db.store.insert_key(key("k")).await.unwrap();
    db.store.insert_hook(hook("hk1", &a.id)).await.unwrap();
    let sub = Subscription {
        id: 99,
        sandbox: b.id.clone(),
        repository: Some("acme/app".into()),
        pull_request: Some(8),
        branch: None,
        events: vec!["push".into()],
    };
    let id = db
        .store
        .add_hook_subscription(&team_id(), "hk1", sub.clone(), 3)
        .await
        .unwrap();
    assert_eq!(id, 1, "the next id, whatever the one given");
    let stranger: TeamId = "tstranger000".parse().unwrap();
    assert!(matches!(
        db.store
            .add_hook_subscription(&stranger, "hk1", sub.clone(), 3)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        db.store.remove_hook_subscription(&stranger, "hk1", 1).await,
        Err(StoreError::NotFound(_))
    ));
    db.store
        .remove_hook_subscription(&team_id(), "hk1", 0)
        .await
        .unwrap();
    assert!(matches!(
        db.store
            .remove_hook_subscription(&team_id(), "hk1", 0)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let id = db
        .store
        .add_hook_subscription(&team_id(), "hk1", sub.clone(), 3)
        .await
        .unwrap();
    assert_eq!(id, 2, "ids are not reused");
    db.store
        .add_hook_subscription(&team_id(), "hk1", sub.clone(), 3)
        .await
        .unwrap();
    assert!(matches!(
        db.store
            .add_hook_subscription(&team_id(), "hk1", sub.clone(), 3)
            .await,
        Err(StoreError::QuotaExceeded(_))
    ));
    let ghost = Subscription {
        sandbox: "sbx0000000000000000z".parse().unwrap(),
        ..sub
    };
    db.store
        .remove_hook_subscription(&team_id(), "hk1", 3)
        .await
        .unwrap();
    assert!(matches!(
        db.store
            .add_hook_subscription(&team_id(), "hk1", ghost, 3)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let got = db.store.get_hook("hk1").await.unwrap().unwrap();
    assert_eq!(
        got.subscriptions.iter().map(|s| s.id).collect::<Vec<_>>(),
        [1, 2]
    );
}
