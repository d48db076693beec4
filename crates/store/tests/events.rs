//! Sandboxes' inboxes: consecutive numbers per sandbox, retries found by
//! their dedupe key, listing after a number, gone with the sandbox.

mod common;

use common::{TestDb, millis, new_sandbox, running};
use time::OffsetDateTime;
use warren_core::{SandboxId, SandboxState as S};
use warren_store::{NewEvent, Store, StoreError};

fn event(sandbox: &SandboxId, kind: &str, dedupe: Option<&str>) -> NewEvent {
    NewEvent {
        sandbox: sandbox.clone(),
        kind: kind.into(),
        source: "ci".into(),
        data: format!(r#"{{"kind":"{kind}"}}"#),
        dedupe_key: dedupe.map(Into::into),
        sha256: "00".repeat(32),
        received_at: millis(OffsetDateTime::now_utc()),
    }
}

#[tokio::test]
async fn events_are_numbered_per_sandbox_and_a_retry_finds_its_first() {
    let db = TestDb::new().await;
    let a = running(&db.store, new_sandbox()).await;
    let b = running(&db.store, new_sandbox()).await;
    let first = db
        .store
        .append_event(event(&a.id, "ci.done", Some("d1")), 1000)
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.event.seq, 1);
    let second = db
        .store
        .append_event(event(&a.id, "review", None), 1000)
        .await
        .unwrap();
    assert_eq!(second.event.seq, 2);
    let other = db
        .store
        .append_event(event(&b.id, "review", None), 1000)
        .await
        .unwrap();
    assert_eq!(other.event.seq, 1, "numbers are per sandbox");

    let again = db
        .store
        .append_event(event(&a.id, "changed", Some("d1")), 1000)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        again.event, first.event,
        "a retry gets the first event back"
    );

    let all = db.store.list_events(&a.id, 0, 10).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(all[0].size, all[0].data.len() as u64);
    let later = db.store.list_events(&a.id, 1, 10).await.unwrap();
    assert_eq!(
        later.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["review"]
    );
    assert_eq!(db.store.list_events(&a.id, 0, 1).await.unwrap().len(), 1);
    // They survive a reopen.
    let reopened = db.reopen().await;
    assert_eq!(reopened.list_events(&a.id, 0, 10).await.unwrap(), all);
}

#[tokio::test]
async fn concurrent_senders_get_consecutive_numbers() {
    let db = TestDb::new().await;
    let a = running(&db.store, new_sandbox()).await;
    let store = std::sync::Arc::new(db.store.clone());
    let sends: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            let id = a.id.clone();
            tokio::spawn(async move {
                store
                    .append_event(event(&id, &format!("e{i}"), None), 1000)
                    .await
                    .unwrap()
                    .event
                    .seq
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for s in sends {
        seqs.push(s.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=40).collect::<Vec<u64>>());
}

#[tokio::test]
async fn an_unknown_sandbox_has_no_inbox_and_a_deleted_one_takes_its_own() {
    let db = TestDb::new().await;
    let err = db
        .store
        .append_event(event(&SandboxId::generate(), "x", None), 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let a = running(&db.store, new_sandbox()).await;
    db.store
        .append_event(event(&a.id, "x", None), 1000)
        .await
        .unwrap();
    db.store
        .transition(&a.id, S::Running, S::Killed)
        .await
        .unwrap();
    db.store.release_slot(&a.id).await.unwrap();
    db.store.delete_sandbox(&a.id).await.unwrap();
    assert!(db.store.list_events(&a.id, 0, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_full_inbox_refuses_new_events_but_finds_retries() {
    let db = TestDb::new().await;
    let a = running(&db.store, new_sandbox()).await;
    for key in ["k1", "k2"] {
        db.store
            .append_event(event(&a.id, "x", Some(key)), 2)
            .await
            .unwrap();
    }
    let err = db
        .store
        .append_event(event(&a.id, "x", Some("k3")), 2)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::QuotaExceeded(ref m) if m.contains("2 events")),
        "{err:?}"
    );
    let retry = db
        .store
        .append_event(event(&a.id, "x", Some("k2")), 2)
        .await
        .unwrap();
    assert_eq!((retry.event.seq, retry.created), (2, false));
    assert_eq!(db.store.list_events(&a.id, 0, 10).await.unwrap().len(), 2);
}
