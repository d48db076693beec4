//! Access grants: reuse of a key's valid grant, expiry, death with the key,
//! the sandbox's rollback and the sandbox's row.

use crate::common;

use common::{TestDb, key, millis, new_sandbox, running};
use time::{Duration, OffsetDateTime};
use warren_core::{KeyId, SandboxId, SandboxState as S};
use warren_store::{GrantKind, GrantRecord, Store, StoreError};

fn grant(sandbox: &SandboxId, key: &KeyId, kind: GrantKind, ttl: Duration) -> GrantRecord {
    let now = millis(OffsetDateTime::now_utc());
    GrantRecord {
        id: format!("g{}", SandboxId::generate()),
        sandbox: sandbox.clone(),
        kind,
        key: key.clone(),
        created_at: now,
        expires_at: now + ttl,
    }
}

#[tokio::test]
async fn a_key_gets_its_valid_grant_again_and_a_new_one_near_expiry() {
    let db = TestDb::new().await;
    let sbx = running(&db.store, new_sandbox()).await;
    let k = KeyId::generate();
    let day = Duration::hours(24);
    let now = OffsetDateTime::now_utc();

    let first = db
        .store
        .issue_grant(grant(&sbx.id, &k, GrantKind::Envd, day), now + day / 2)
        .await
        .unwrap();
    let again = db
        .store
        .issue_grant(grant(&sbx.id, &k, GrantKind::Envd, day), now + day / 2)
        .await
        .unwrap();
    assert_eq!(again, first, "a valid grant is handed out again");
    assert_eq!(
        db.store.get_grant(&first.id).await.unwrap(),
        Some(first.clone())
    );

    // Another kind, or another key, is another grant.
    let traffic = db
        .store
        .issue_grant(grant(&sbx.id, &k, GrantKind::Traffic, day), now + day / 2)
        .await
        .unwrap();
    let other_key = db
        .store
        .issue_grant(
            grant(&sbx.id, &KeyId::generate(), GrantKind::Envd, day),
            now + day / 2,
        )
        .await
        .unwrap();
    assert_ne!(traffic.id, first.id);
    assert_ne!(other_key.id, first.id);

    // One that would expire before the reuse horizon is not handed out.
    let later = db
        .store
        .issue_grant(grant(&sbx.id, &k, GrantKind::Envd, day), now + day * 2)
        .await
        .unwrap();
    assert_ne!(later.id, first.id);
    let live = db
        .store
        .live_grants(GrantKind::Envd, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(live.len(), 3, "{live:?}");
}

#[tokio::test]
async fn expired_grants_are_not_live_and_are_swept_at_the_next_issue() {
    let db = TestDb::new().await;
    let sbx = running(&db.store, new_sandbox()).await;
    let k = KeyId::generate();
    let mut old = grant(&sbx.id, &k, GrantKind::Envd, Duration::hours(1));
    old.created_at -= Duration::hours(2);
    old.expires_at -= Duration::hours(2);
    let past = old.created_at;
    db.store.issue_grant(old.clone(), past).await.unwrap();
    let now = OffsetDateTime::now_utc();
    assert!(
        db.store
            .live_grants(GrantKind::Envd, now)
            .await
            .unwrap()
            .is_empty()
    );

    db.store
        .issue_grant(
            grant(&sbx.id, &k, GrantKind::Traffic, Duration::hours(1)),
            now,
        )
        .await
        .unwrap();
    assert_eq!(db.store.get_grant(&old.id).await.unwrap(), None);
}

#[tokio::test]
async fn grants_die_with_their_key_their_sandbox_and_a_rollback() {
    let db = TestDb::new().await;
    let kept = key("kept");
    let revoked = key("revoked");
    db.store.insert_key(kept.clone()).await.unwrap();
    db.store.insert_key(revoked.clone()).await.unwrap();
    let sbx = running(&db.store, new_sandbox()).await;
    let now = OffsetDateTime::now_utc();
    let h = Duration::hours(1);
    let g_kept = db
        .store
        .issue_grant(grant(&sbx.id, &kept.id, GrantKind::Envd, h), now)
        .await
        .unwrap();
    let g_revoked = db
        .store
        .issue_grant(grant(&sbx.id, &revoked.id, GrantKind::Envd, h), now)
        .await
        .unwrap();

    db.store.revoke_key(&revoked.id, now).await.unwrap();
    assert_eq!(db.store.get_grant(&g_revoked.id).await.unwrap(), None);
    assert!(db.store.get_grant(&g_kept.id).await.unwrap().is_some());

    assert_eq!(db.store.delete_grants(&sbx.id).await.unwrap(), 1);
    assert_eq!(db.store.get_grant(&g_kept.id).await.unwrap(), None);

    // A dead sandbox's grants are not live, and go with its row.
    let g = db
        .store
        .issue_grant(grant(&sbx.id, &kept.id, GrantKind::Envd, h), now)
        .await
        .unwrap();
    db.store
        .transition(&sbx.id, S::Running, S::Killed)
        .await
        .unwrap();
    assert!(
        db.store
            .live_grants(GrantKind::Envd, now)
            .await
            .unwrap()
            .is_empty()
    );
    db.store.release_slot(&sbx.id).await.unwrap();
    db.store.delete_sandbox(&sbx.id).await.unwrap();
    assert_eq!(db.store.get_grant(&g.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_grant_for_an_unknown_sandbox_is_not_found() {
    let db = TestDb::new().await;
    let err = db
        .store
        .issue_grant(
            grant(
                &SandboxId::generate(),
                &KeyId::generate(),
                GrantKind::Envd,
                Duration::hours(1),
            ),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}
