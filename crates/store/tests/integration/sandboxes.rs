//! Creating, reading, listing, expiring and deleting sandboxes.

use crate::common;

use std::collections::BTreeMap;

use common::{TestDb, millis, new_sandbox, running, with_metadata};
use time::{Duration, OffsetDateTime};
use warren_core::{Limits, SandboxId, SandboxState as S};
use warren_store::{SandboxFilter, Store, StoreError};

#[tokio::test]
async fn create_then_get_returns_the_same_record() {
    let db = TestDb::new().await;
    let mut new = with_metadata(&[("team", "red"), ("ci.job", "42")]);
    new.env.insert("PATH".into(), "/usr/bin:/bin".into());
    new.env
        .insert("TOKEN".into(), "a \"quoted\" value\nwith a newline".into());
    new.limits = Limits {
        cpus: 4,
        memory_mb: 2048,
        pids: 4096,
        disk_mb: 300,
    };
    let before = millis(OffsetDateTime::now_utc());

    let created = db.store.create_sandbox(new.clone()).await.unwrap();

    assert_eq!(created.id, new.id);
    assert_eq!(created.template, "base");
    assert_eq!(created.state, S::Creating);
    assert_eq!(created.limits, new.limits);
    assert_eq!(created.env, new.env);
    assert_eq!(created.metadata, new.metadata);
    assert_eq!(created.created_by, new.created_by);
    assert_eq!(created.expires_at, millis(new.expires_at));
    assert!(created.created_at >= before);
    assert!(created.created_at <= OffsetDateTime::now_utc());
    assert_eq!(created.state_changed_at, created.created_at);
    assert_eq!(db.store.get_sandbox(&new.id).await.unwrap(), Some(created));
}

#[tokio::test]
async fn unknown_sandbox_is_none() {
    let db = TestDb::new().await;
    assert_eq!(
        db.store.get_sandbox(&SandboxId::generate()).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn duplicate_id_is_already_exists_even_after_kill() {
    let db = TestDb::new().await;
    let new = new_sandbox();
    let created = db.store.create_sandbox(new.clone()).await.unwrap();
    let err = db.store.create_sandbox(new.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");

    db.store
        .transition(&created.id, S::Creating, S::Killed)
        .await
        .unwrap();
    let err = db.store.create_sandbox(new).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
}

#[tokio::test]
async fn list_defaults_to_live_sandboxes_oldest_first() {
    let db = TestDb::new().await;
    let a = running(&db.store, new_sandbox()).await;
    let b = db.store.create_sandbox(new_sandbox()).await.unwrap();
    let c = running(&db.store, new_sandbox()).await;
    let d = running(&db.store, new_sandbox()).await;
    db.store
        .transition(&c.id, S::Running, S::Killed)
        .await
        .unwrap();
    db.store
        .transition(&d.id, S::Running, S::Failed)
        .await
        .unwrap();

    let ids = |records: Vec<warren_store::SandboxRecord>| -> Vec<SandboxId> {
        records.into_iter().map(|r| r.id).collect()
    };
    let live = db
        .store
        .list_sandboxes(&SandboxFilter::default())
        .await
        .unwrap();
    assert_eq!(ids(live), vec![a.id.clone(), b.id.clone()]);

    let dead = SandboxFilter {
        states: vec![S::Killed, S::Failed],
        ..SandboxFilter::default()
    };
    assert_eq!(
        ids(db.store.list_sandboxes(&dead).await.unwrap()),
        vec![c.id.clone(), d.id.clone()]
    );

    let everything = SandboxFilter {
        states: S::ALL.to_vec(),
        ..SandboxFilter::default()
    };
    assert_eq!(
        ids(db.store.list_sandboxes(&everything).await.unwrap()),
        vec![a.id.clone(), b.id, c.id, d.id]
    );

    let running_only = SandboxFilter {
        states: vec![S::Running],
        ..SandboxFilter::default()
    };
    assert_eq!(
        ids(db.store.list_sandboxes(&running_only).await.unwrap()),
        vec![a.id]
    );
}

#[tokio::test]
async fn list_matches_every_metadata_pair_exactly() {
    let db = TestDb::new().await;
    let red = db
        .store
        .create_sandbox(with_metadata(&[
            ("team", "red"),
            ("a.b", "1"),
            ("$[0]", "x"),
        ]))
        .await
        .unwrap();
    let blue = db
        .store
        .create_sandbox(with_metadata(&[("team", "blue"), ("a", "{\"b\":\"1\"}")]))
        .await
        .unwrap();
    let quoted = db
        .store
        .create_sandbox(with_metadata(&[
            ("say \"hi\"", "héllo ✓"),
            ("team", "red "),
        ]))
        .await
        .unwrap();
    db.store.create_sandbox(new_sandbox()).await.unwrap();

    let find = |pairs: &[(&str, &str)]| {
        let filter = SandboxFilter {
            team: None,
            states: vec![],
            metadata: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        };
        let store = db.store.clone();
        async move {
            store
                .list_sandboxes(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };

    assert_eq!(find(&[("team", "red")]).await, vec![red.id.clone()]);
    assert_eq!(find(&[("team", "blue")]).await, vec![blue.id.clone()]);
    assert_eq!(find(&[("team", "red ")]).await, vec![quoted.id.clone()]);
    assert_eq!(find(&[("a.b", "1")]).await, vec![red.id.clone()]);
    assert_eq!(find(&[("$[0]", "x")]).await, vec![red.id.clone()]);
    assert_eq!(find(&[("say \"hi\"", "héllo ✓")]).await, vec![quoted.id]);
    assert_eq!(find(&[("team", "red"), ("a.b", "1")]).await, vec![red.id]);
    assert!(find(&[("team", "red"), ("a.b", "2")]).await.is_empty());
    assert!(find(&[("team", "RED")]).await.is_empty());
    assert!(find(&[("missing", "")]).await.is_empty());
    assert_eq!(find(&[]).await.len(), 4);
}

#[tokio::test]
async fn expired_lists_live_sandboxes_due_by_now_soonest_first() {
    let db = TestDb::new().await;
    let now = millis(OffsetDateTime::now_utc());
    let at = |offset: Duration| {
        let mut new = new_sandbox();
        new.expires_at = now + offset;
        new
    };
    let late = db
        .store
        .create_sandbox(at(Duration::minutes(-1)))
        .await
        .unwrap();
    let later = db
        .store
        .create_sandbox(at(Duration::minutes(-10)))
        .await
        .unwrap();
    let exactly_now = db.store.create_sandbox(at(Duration::ZERO)).await.unwrap();
    db.store
        .create_sandbox(at(Duration::milliseconds(1)))
        .await
        .unwrap();
    db.store
        .create_sandbox(at(Duration::hours(1)))
        .await
        .unwrap();
    let dead = db
        .store
        .create_sandbox(at(Duration::hours(-1)))
        .await
        .unwrap();
    db.store
        .transition(&dead.id, S::Creating, S::Killed)
        .await
        .unwrap();

    let expired = db.store.expired_sandboxes(now).await.unwrap();
    assert_eq!(expired, vec![later.id, late.id, exactly_now.id]);
}

#[tokio::test]
async fn a_sandbox_pausing_or_resuming_past_its_expiry_is_not_expired() {
    // The reaper must not kill a sandbox that is being resumed (its fresh
    // lifetime comes when the resume finishes) or paused.
    let db = TestDb::new().await;
    let now = millis(OffsetDateTime::now_utc());
    let mut new = new_sandbox();
    new.expires_at = now - Duration::minutes(1);
    let sb = db.store.create_sandbox(new).await.unwrap();
    for (from, to) in [(S::Creating, S::Running), (S::Running, S::Pausing)] {
        db.store.transition(&sb.id, from, to).await.unwrap();
    }
    assert!(db.store.expired_sandboxes(now).await.unwrap().is_empty());
    for (from, to) in [(S::Pausing, S::Paused), (S::Paused, S::Resuming)] {
        db.store.transition(&sb.id, from, to).await.unwrap();
    }
    assert!(db.store.expired_sandboxes(now).await.unwrap().is_empty());
    db.store
        .transition(&sb.id, S::Resuming, S::Running)
        .await
        .unwrap();
    assert_eq!(db.store.expired_sandboxes(now).await.unwrap(), vec![sb.id]);
}

#[tokio::test]
async fn set_expiry_moves_a_sandbox_in_and_out_of_expiry() {
    let db = TestDb::new().await;
    let sandbox = db.store.create_sandbox(new_sandbox()).await.unwrap();
    let now = OffsetDateTime::now_utc();
    assert!(db.store.expired_sandboxes(now).await.unwrap().is_empty());

    let updated = db
        .store
        .set_expiry(&sandbox.id, now - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(updated.expires_at, millis(now - Duration::seconds(1)));
    assert_eq!(updated.state, sandbox.state);
    assert_eq!(
        db.store.expired_sandboxes(now).await.unwrap(),
        vec![sandbox.id.clone()]
    );

    db.store
        .set_expiry(&sandbox.id, now + Duration::hours(1))
        .await
        .unwrap();
    assert!(db.store.expired_sandboxes(now).await.unwrap().is_empty());

    let err = db
        .store
        .set_expiry(&SandboxId::generate(), now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn only_dead_sandboxes_can_be_deleted() {
    let db = TestDb::new().await;
    let live = running(&db.store, new_sandbox()).await;
    let err = db.store.delete_sandbox(&live.id).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotTerminal(S::Running)),
        "{err:?}"
    );
    assert!(db.store.get_sandbox(&live.id).await.unwrap().is_some());

    db.store
        .transition(&live.id, S::Running, S::Killed)
        .await
        .unwrap();
    // Its network teardown is not confirmed: the row must stay.
    let err = db.store.delete_sandbox(&live.id).await.unwrap_err();
    assert!(matches!(err, StoreError::SlotNotReleased(_)), "{err:?}");
    assert_eq!(
        db.store.unreleased_sandboxes().await.unwrap(),
        vec![live.id.clone()]
    );

    db.store.release_slot(&live.id).await.unwrap();
    db.store.delete_sandbox(&live.id).await.unwrap();
    assert_eq!(db.store.get_sandbox(&live.id).await.unwrap(), None);

    let err = db.store.delete_sandbox(&live.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn purge_keeps_dead_sandboxes_whose_slot_is_not_released() {
    let db = TestDb::new().await;
    let pending = running(&db.store, new_sandbox()).await;
    let done = running(&db.store, new_sandbox()).await;
    for s in [&pending, &done] {
        db.store
            .transition(&s.id, S::Running, S::Killed)
            .await
            .unwrap();
    }
    db.store.release_slot(&done.id).await.unwrap();

    let now = OffsetDateTime::now_utc();
    assert_eq!(db.store.purge_sandboxes(now).await.unwrap(), 1);
    assert_eq!(db.store.get_sandbox(&done.id).await.unwrap(), None);
    assert_eq!(
        db.store
            .get_sandbox(&pending.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        S::Killed
    );
    assert_eq!(
        db.store.unreleased_sandboxes().await.unwrap(),
        vec![pending.id.clone()]
    );
}

#[tokio::test]
async fn purge_removes_sandboxes_that_ended_before_the_cutoff() {
    let db = TestDb::new().await;
    let killed = running(&db.store, new_sandbox()).await;
    let failed = db.store.create_sandbox(new_sandbox()).await.unwrap();
    let live = running(&db.store, new_sandbox()).await;
    let killed = db
        .store
        .transition(&killed.id, S::Running, S::Killed)
        .await
        .unwrap();
    db.store
        .transition(&failed.id, S::Creating, S::Failed)
        .await
        .unwrap();

    db.store.release_slot(&killed.id).await.unwrap();
    db.store.release_slot(&failed.id).await.unwrap();

    let before_any_end = killed.state_changed_at - Duration::milliseconds(1);
    assert_eq!(db.store.purge_sandboxes(before_any_end).await.unwrap(), 0);
    assert!(db.store.get_sandbox(&killed.id).await.unwrap().is_some());

    let purged = db
        .store
        .purge_sandboxes(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert_eq!(db.store.get_sandbox(&killed.id).await.unwrap(), None);
    assert_eq!(db.store.get_sandbox(&failed.id).await.unwrap(), None);
    assert_eq!(db.store.get_sandbox(&live.id).await.unwrap(), Some(live));
}
