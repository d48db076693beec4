//! Sandboxes' inboxes: consecutive numbers per sandbox, retries found by
//! their dedupe key, listing after a number, gone with the sandbox.

use crate::common;

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

async fn fill(db: &TestDb, sandbox: &SandboxId, n: usize) {
    for i in 0..n {
        db.store
            .append_event(event(sandbox, &format!("e{i}"), None), 1000)
            .await
            .unwrap();
    }
}

fn seqs(events: &[warren_store::EventRecord]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn taking_hands_out_what_is_not_acknowledged_and_acks_only_move_forward() {
    let db = TestDb::new().await;
    let a = running(&db.store, new_sandbox()).await;
    fill(&db, &a.id, 5).await;
    let now = millis(OffsetDateTime::now_utc());

    let first = db.store.take_events(&a.id, 0, 2, now).await.unwrap();
    assert_eq!(seqs(&first), [1, 2]);
    assert!(first.iter().all(|e| e.delivered_at == Some(now)));
    // Unacknowledged events are handed out again to whoever asks from 0.
    assert_eq!(
        seqs(&db.store.take_events(&a.id, 0, 10, now).await.unwrap()),
        [1, 2, 3, 4, 5]
    );
    let (before, after) = db.store.ack_events(&a.id, 3, now).await.unwrap();
    assert_eq!((before.acked_seq, after.acked_seq), (0, 3));
    assert_eq!(
        seqs(&db.store.take_events(&a.id, 0, 10, now).await.unwrap()),
        [4, 5],
        "acknowledged events are not handed out again"
    );
    assert_eq!(
        seqs(&db.store.take_events(&a.id, 4, 10, now).await.unwrap()),
        [5]
    );
    assert_eq!(
        seqs(&db.store.take_events(&a.id, 99, 10, now).await.unwrap()),
        [4, 5],
        "a position past the newest event counts from the acknowledged one"
    );
    let (_, same) = db.store.ack_events(&a.id, 2, now).await.unwrap();
    assert_eq!(same.acked_seq, 3, "acknowledgement never goes back");
    assert!(matches!(
        db.store.ack_events(&a.id, 6, now).await,
        Err(StoreError::InvalidSeq {
            seq: 6,
            last_seq: 5
        })
    ));
    let listed = db.store.list_events(&a.id, 0, 10).await.unwrap();
    assert!(listed[..3].iter().all(|e| e.acked_at == Some(now)));
    assert!(listed[3..].iter().all(|e| e.acked_at.is_none()));
}

#[tokio::test]
async fn pruning_keeps_numbering_and_the_unacknowledged() {
    let db = TestDb::new().await;
    let a = running(&db.store, new_sandbox()).await;
    fill(&db, &a.id, 4).await;
    let then = millis(OffsetDateTime::now_utc()) - time::Duration::days(8);
    db.store.ack_events(&a.id, 3, then).await.unwrap();
    let cutoff = millis(OffsetDateTime::now_utc()) - time::Duration::days(7);
    assert_eq!(db.store.prune_events(cutoff).await.unwrap(), 3);
    assert_eq!(
        seqs(&db.store.list_events(&a.id, 0, 10).await.unwrap()),
        [4]
    );
    let next = db
        .store
        .append_event(event(&a.id, "later", None), 2)
        .await
        .unwrap();
    assert_eq!(next.event.seq, 5, "numbers are never reused");
    let full = db.store.append_event(event(&a.id, "more", None), 2).await;
    assert!(
        matches!(full, Err(StoreError::QuotaExceeded(_))),
        "the bound counts the events held, not the numbers given"
    );
}

#[tokio::test]
async fn a_branch_inbox_takes_its_parents_position_and_then_its_own_events() {
    let db = TestDb::new().await;
    let parent = running(&db.store, new_sandbox()).await;
    let settings = warren_core::inbox::InboxSettings {
        wake: warren_core::inbox::WakePolicy {
            on: vec!["github.*".into()],
        },
        handler: Some(warren_core::inbox::EventHandler {
            cmd: vec!["/bin/true".into()],
        }),
    };
    db.store
        .set_inbox_settings(&parent.id, &settings)
        .await
        .unwrap();
    fill(&db, &parent.id, 4).await;
    let now = millis(OffsetDateTime::now_utc());
    db.store.ack_events(&parent.id, 2, now).await.unwrap();
    // An event that arrives after the fork image was taken (at 3).
    let branch = running(&db.store, new_sandbox()).await;
    db.store
        .fork_inbox(&parent.id, &branch.id, 3)
        .await
        .unwrap();

    let inbox = db.store.inbox(&branch.id).await.unwrap().unwrap();
    assert_eq!((inbox.last_seq, inbox.acked_seq), (3, 2));
    assert_eq!(inbox.settings, settings);
    assert_eq!(
        seqs(&db.store.take_events(&branch.id, 0, 10, now).await.unwrap()),
        [3]
    );
    let own = db
        .store
        .append_event(event(&branch.id, "branch.only", None), 1000)
        .await
        .unwrap();
    assert_eq!(own.event.seq, 4);
    let parents = db.store.list_events(&parent.id, 0, 10).await.unwrap();
    assert_eq!(parents.len(), 4);
    assert!(parents.iter().all(|e| e.kind != "branch.only"));
    let pending = db.store.pending_handlers().await.unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
}
