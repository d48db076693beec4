//! Warm pools: settings rows, and the claim that hands a pooled sandbox to
//! a team once, within its quota, out of the expiry scan until then.

use crate::common;

use common::{TestDb, millis, new_sandbox, running, team_id, user_id};
use time::{Duration, OffsetDateTime};
use warren_core::quota::Quota;
use warren_core::{KeyId, Limits, Persistence, TeamId};
use warren_store::{
    PoolClaim, PoolRecord, SandboxFilter, Store, StoreError, pool_owner, pool_team,
};

fn pooled() -> warren_store::NewSandbox {
    let (owner, key) = pool_owner();
    warren_store::NewSandbox {
        team: pool_team(),
        owner,
        created_by: key,
        expires_at: OffsetDateTime::now_utc() - Duration::seconds(1),
        ..new_sandbox()
    }
}

fn claim_for(team: TeamId) -> PoolClaim {
    PoolClaim {
        team,
        owner: user_id(),
        created_by: KeyId::generate(),
        env: [("A".to_owned(), "b".to_owned())].into(),
        metadata: [("m".to_owned(), "n".to_owned())].into(),
        expires_at: millis(OffsetDateTime::now_utc() + Duration::minutes(7)),
        persistence: Persistence::default(),
        network: Default::default(),
        inbox: Default::default(),
    }
}

#[tokio::test]
async fn pool_settings_are_stored_replaced_and_deleted() {
    let db = TestDb::new().await;
    let pool = PoolRecord {
        template: "base".into(),
        limits: Limits::default(),
        min: 1,
        max: 4,
        frozen: false,
        updated_at: millis(OffsetDateTime::now_utc()),
        updated_by: KeyId::generate(),
    };
    assert_eq!(db.store.put_pool(&pool).await.unwrap(), pool);
    let bigger = PoolRecord {
        max: 8,
        frozen: true,
        ..pool.clone()
    };
    db.store.put_pool(&bigger).await.unwrap();
    assert_eq!(db.reopen().await.list_pools().await.unwrap(), [bigger]);
    db.store.delete_pool("base").await.unwrap();
    assert!(db.store.list_pools().await.unwrap().is_empty());
    let err = db.store.delete_pool("base").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn a_pooled_sandbox_is_claimed_once_within_the_teams_quota_and_never_expires_unclaimed() {
    let db = TestDb::new().await;
    let a = running(&db.store, pooled()).await;
    let b = running(&db.store, pooled()).await;
    // Past its expiry, yet no team's lifetime applies to it.
    let expired = db
        .store
        .expired_sandboxes(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(expired.is_empty(), "{expired:?}");
    // No team lists or counts it.
    let listed = db
        .store
        .list_sandboxes(&SandboxFilter {
            team: Some(team_id()),
            ..SandboxFilter::default()
        })
        .await
        .unwrap();
    assert!(listed.is_empty());
    assert_eq!(db.store.team_usage(&team_id()).await.unwrap().sandboxes, 0);

    let claim = claim_for(team_id());
    let got = db
        .store
        .claim_pooled_sandbox(&a.id, &claim)
        .await
        .unwrap()
        .expect("claimable");
    assert_eq!(got.team, team_id());
    assert_eq!(got.owner, claim.owner);
    assert_eq!(got.created_by, claim.created_by);
    assert_eq!(got.env, claim.env);
    assert_eq!(got.metadata, claim.metadata);
    assert_eq!(got.expires_at, claim.expires_at);
    assert!(got.created_at >= a.created_at);
    assert_eq!(db.store.team_usage(&team_id()).await.unwrap().sandboxes, 1);
    // A second claim of the same row finds nothing.
    let again = db.store.claim_pooled_sandbox(&a.id, &claim).await.unwrap();
    assert_eq!(again, None);

    // Past the team's quota the claim is refused and the row stays pooled.
    let one = Quota {
        max_sandboxes: 1,
        ..Quota::DEFAULT
    };
    db.store
        .set_quota(&team_id(), &one, &KeyId::generate())
        .await
        .unwrap();
    let err = db
        .store
        .claim_pooled_sandbox(&b.id, &claim)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded(_)), "{err:?}");
    let b_now = db.store.get_sandbox(&b.id).await.unwrap().unwrap();
    assert_eq!(b_now.team, pool_team());
}
