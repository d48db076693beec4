//! Network policies of sandboxes and their bounded event history.

use crate::common;

use common::{TestDb, new_sandbox, running};
use time::OffsetDateTime;
use warren_core::SandboxState as S;
use warren_core::network::NetworkPolicy;
use warren_store::{MAX_NETWORK_EVENTS, NewNetEvent, Store, StoreError};

fn policy(json: &str) -> NetworkPolicy {
    serde_json::from_str(json).unwrap()
}

fn event(sandbox: &warren_core::SandboxId, n: usize) -> NewNetEvent {
    NewNetEvent {
        sandbox_id: sandbox.clone(),
        at: common::millis(OffsetDateTime::now_utc()),
        kind: "dns".into(),
        dest: Some("198.18.0.9".parse().unwrap()),
        port: Some(53),
        name: Some(format!("n{n}.example.test")),
        verdict: if n.is_multiple_of(2) { "allow" } else { "deny" }.into(),
        reason: (!n.is_multiple_of(2)).then(|| "not_allowed".to_owned()),
        bytes_out: 40,
        bytes_in: n as u64,
    }
}

#[tokio::test]
async fn policies_are_stored_and_replaced() {
    let db = TestDb::new().await;
    let mut new = new_sandbox();
    new.network = policy(r#"{"allow":["*.example.test","198.18.0.0/15"]}"#);
    let rec = db.store.create_sandbox(new.clone()).await.unwrap();
    assert_eq!(rec.network, new.network);
    let open = policy(r#"{"internet":"allow","deny":["bad.example.test"]}"#);
    let updated = db.store.set_network(&rec.id, &open).await.unwrap();
    assert_eq!(updated.network, open);
    assert_eq!(
        db.store
            .get_sandbox(&rec.id)
            .await
            .unwrap()
            .unwrap()
            .network,
        open
    );
    let err = db
        .store
        .set_network(&warren_core::SandboxId::generate(), &open)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn events_page_newest_first_are_bounded_and_go_with_the_sandbox() {
    let db = TestDb::new().await;
    let a = running(&db.store, new_sandbox()).await;
    let b = running(&db.store, new_sandbox()).await;
    let batch: Vec<_> = (0..MAX_NETWORK_EVENTS + 5)
        .map(|n| event(&a.id, n))
        .collect();
    db.store.append_network_events(&batch).await.unwrap();
    db.store
        .append_network_events(&[event(&b.id, 0)])
        .await
        .unwrap();

    let page = db.store.network_events(&a.id, None, 10).await.unwrap();
    assert_eq!(page.len(), 10);
    assert_eq!(page[0].event, batch[batch.len() - 1]);
    assert!(page.windows(2).all(|w| w[0].seq > w[1].seq));
    let next = db
        .store
        .network_events(&a.id, Some(page[9].seq), 5000)
        .await
        .unwrap();
    assert_eq!(
        next.len() + page.len(),
        MAX_NETWORK_EVENTS,
        "oldest trimmed"
    );
    assert_eq!(next.last().unwrap().event, batch[5]);
    assert_eq!(
        db.store
            .network_events(&b.id, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    db.store
        .transition(&a.id, S::Running, S::Killed)
        .await
        .unwrap();
    db.store.release_slot(&a.id).await.unwrap();
    db.store.delete_sandbox(&a.id).await.unwrap();
    assert!(
        db.store
            .network_events(&a.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.store
            .network_events(&b.id, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}
