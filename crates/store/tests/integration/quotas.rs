//! Team quotas: the stored row and its defaults, usage, and admission of
//! new live sandboxes and resumes in the write's own transaction.

use crate::common;

use std::collections::BTreeMap;

use common::{TestDb, new_sandbox, running, team_id};
use warren_core::quota::{Quota, Usage};
use warren_core::{KeyId, Limits, PauseMode, SandboxState as S, SnapshotId, TeamId};
use warren_store::{NewSnapshot, SandboxRecord, SnapshotKind, Store, StoreError};

fn two_sandboxes() -> Quota {
    Quota {
        max_sandboxes: 2,
        ..Quota::DEFAULT
    }
}

fn pause_image(of: &SandboxRecord, size_bytes: u64) -> NewSnapshot {
    NewSnapshot {
        id: SnapshotId::generate(),
        sandbox_id: of.id.clone(),
        team: of.team.clone(),
        kind: SnapshotKind::Pause,
        name: None,
        template: of.template.clone(),
        template_version: of.template_version.clone(),
        limits: of.limits,
        env: BTreeMap::new(),
        parent_snapshot: None,
        size_bytes,
        created_by: KeyId::generate(),
        network: of.network.clone(),
    }
}

#[tokio::test]
async fn a_quota_is_stored_per_team_and_defaults_apply_without_one() {
    let db = TestDb::new().await;
    assert_eq!(db.store.get_quota(&team_id()).await.unwrap(), None);
    let q = Quota {
        max_sandboxes: 3,
        max_vcpus: 5,
        max_memory_mb: 7,
        max_disk_mb: 11,
        max_snapshot_bytes: 1 << 40,
        max_branches: 2,
    };
    let by = KeyId::generate();
    db.store.set_quota(&team_id(), &q, &by).await.unwrap();
    assert_eq!(db.store.get_quota(&team_id()).await.unwrap(), Some(q));
    let q2 = Quota { max_vcpus: 9, ..q };
    db.store.set_quota(&team_id(), &q2, &by).await.unwrap();
    assert_eq!(db.store.get_quota(&team_id()).await.unwrap(), Some(q2));
    // It survives a reopen.
    let again = db.reopen().await;
    assert_eq!(again.get_quota(&team_id()).await.unwrap(), Some(q2));
    // An unknown team has none to set.
    let err = db
        .store
        .set_quota(&TeamId::generate(), &q, &by)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn usage_counts_live_sandboxes_and_paused_ones_only_by_their_image() {
    let db = TestDb::new().await;
    let big = Limits {
        cpus: 2,
        memory_mb: 1024,
        pids: 1024,
        disk_mb: 2048,
    };
    let a = running(&db.store, new_sandbox()).await;
    let mut new = new_sandbox();
    new.limits = big;
    let b = running(&db.store, new).await;
    let dead = running(&db.store, new_sandbox()).await;
    db.store
        .transition(&dead.id, S::Running, S::Killed)
        .await
        .unwrap();
    assert_eq!(
        db.store.team_usage(&team_id()).await.unwrap(),
        Usage {
            sandboxes: 2,
            vcpus: 3,
            memory_mb: 512 + 1024,
            disk_mb: 10240 + 2048,
            snapshot_bytes: 0
        }
    );
    db.store
        .transition(&b.id, S::Running, S::Pausing)
        .await
        .unwrap();
    db.store
        .commit_pause(&b.id, pause_image(&b, 5000), PauseMode::Full)
        .await
        .unwrap();
    assert_eq!(
        db.store.team_usage(&team_id()).await.unwrap(),
        Usage {
            sandboxes: 1,
            vcpus: 1,
            memory_mb: 512,
            disk_mb: 10240,
            snapshot_bytes: 5000
        }
    );
    assert_eq!(a.state, S::Running);
    // Another team's usage is its own.
    assert_eq!(
        db.store.team_usage(&TeamId::generate()).await.unwrap(),
        Usage::default()
    );
}

#[tokio::test]
async fn creates_past_the_quota_are_refused_and_name_the_limit() {
    let db = TestDb::new().await;
    db.store
        .set_quota(&team_id(), &two_sandboxes(), &KeyId::generate())
        .await
        .unwrap();
    for _ in 0..2 {
        db.store
            .create_sandbox_in_quota(new_sandbox())
            .await
            .unwrap();
    }
    let err = db
        .store
        .create_sandbox_in_quota(new_sandbox())
        .await
        .unwrap_err();
    let StoreError::QuotaExceeded(message) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        message,
        "team fixture is at 2 of 2 running sandboxes (quota max_sandboxes)"
    );
    assert_eq!(
        warren_core::WarrenError::from(err).kind,
        warren_core::ErrorKind::QuotaExceeded
    );
    // The plain insert (the daemon's own bookkeeping) is not limited.
    db.store.create_sandbox(new_sandbox()).await.unwrap();
}

#[tokio::test]
async fn disk_limits_are_summed_against_max_disk_mb() {
    let db = TestDb::new().await;
    let quota = Quota {
        max_disk_mb: 1000,
        ..Quota::DEFAULT
    };
    db.store
        .set_quota(&team_id(), &quota, &KeyId::generate())
        .await
        .unwrap();
    let with_disk = |disk_mb| {
        let mut new = new_sandbox();
        new.limits.disk_mb = disk_mb;
        new
    };
    db.store
        .create_sandbox_in_quota(with_disk(600))
        .await
        .unwrap();
    let err = db
        .store
        .create_sandbox_in_quota(with_disk(500))
        .await
        .unwrap_err();
    let StoreError::QuotaExceeded(message) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        message,
        "team fixture is at 600 of 1000 MiB of disk; this needs 500 more (quota max_disk_mb)"
    );
    db.store
        .create_sandbox_in_quota(with_disk(400))
        .await
        .unwrap();
    assert_eq!(db.store.team_usage(&team_id()).await.unwrap().disk_mb, 1000);
}

#[tokio::test]
async fn concurrent_creates_cannot_both_take_the_last_slot() {
    let db = TestDb::new().await;
    db.store
        .set_quota(&team_id(), &two_sandboxes(), &KeyId::generate())
        .await
        .unwrap();
    db.store
        .create_sandbox_in_quota(new_sandbox())
        .await
        .unwrap();
    // Two stores on one file, as two processes would be: even they cannot
    // both pass.
    let other = db.reopen().await;
    let tries = (0..8).map(|i| {
        let store = if i % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        tokio::spawn(async move { store.create_sandbox_in_quota(new_sandbox()).await })
    });
    let mut results = Vec::new();
    for t in tries.collect::<Vec<_>>() {
        results.push(t.await.unwrap());
    }
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(StoreError::QuotaExceeded(_)))),
        "{results:?}"
    );
    assert_eq!(db.store.team_usage(&team_id()).await.unwrap().sandboxes, 2);
}

#[tokio::test]
async fn a_resume_must_fit_the_quota_again() {
    let db = TestDb::new().await;
    let sb = running(&db.store, new_sandbox()).await;
    db.store
        .transition(&sb.id, S::Running, S::Pausing)
        .await
        .unwrap();
    db.store
        .commit_pause(&sb.id, pause_image(&sb, 10), PauseMode::Full)
        .await
        .unwrap();
    // While it is paused, the team fills its quota.
    db.store
        .set_quota(&team_id(), &two_sandboxes(), &KeyId::generate())
        .await
        .unwrap();
    for _ in 0..2 {
        db.store
            .create_sandbox_in_quota(new_sandbox())
            .await
            .unwrap();
    }
    let err = db.store.begin_resume_in_quota(&sb.id).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::QuotaExceeded(m) if m.contains("2 of 2 running sandboxes")),
        "{err:?}"
    );
    assert_eq!(
        db.store.get_sandbox(&sb.id).await.unwrap().unwrap().state,
        S::Paused
    );
    // Room again: it resumes.
    let quota = Quota {
        max_sandboxes: 3,
        ..Quota::DEFAULT
    };
    db.store
        .set_quota(&team_id(), &quota, &KeyId::generate())
        .await
        .unwrap();
    let rec = db.store.begin_resume_in_quota(&sb.id).await.unwrap();
    assert_eq!(rec.state, S::Resuming);
    // Not paused any more: a conflict, not a second resume.
    let err = db.store.begin_resume_in_quota(&sb.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                actual: S::Resuming,
                ..
            }
        ),
        "{err:?}"
    );
}
