//! An exported log verifies, and each kind of tampering is reported at the
//! index it starts from.

mod common;

use common::{build_log, test_key};
use warren_audit::{
    ExportedEntry, SignedTreeHead, SigningKey, VerifyError, leaf_hash, verify_consistency,
    verify_inclusion, verify_log,
};

const N: u64 = 1000;
const EVERY: u64 = 100;

fn key() -> warren_audit::VerifyingKey {
    test_key().verifying_key()
}

#[tokio::test]
async fn ten_thousand_entries_verify_and_proofs_check_against_signed_heads() {
    let (log, lines, heads) = build_log(10_000, 1000).await;
    let report = verify_log(&lines, &heads, &key()).unwrap();
    assert_eq!(report.size, 10_000);
    assert_eq!(report.heads, 10);
    assert_eq!(report.latest_head.map(|h| h.size), Some(10_000));
    assert_eq!(report.root_hash, log.root(10_000).await.unwrap());

    let latest = heads[9].verify(&key()).unwrap();
    for index in [0u64, 1, 4999, 9998, 9999] {
        let proof = log.inclusion_proof(index, latest.size).await.unwrap();
        let leaf = lines[index as usize].entry.leaf_hash().unwrap();
        verify_inclusion(&leaf, index, latest.size, &proof, &latest.root_hash).unwrap();
    }
    let old = heads[2].verify(&key()).unwrap();
    let proof = log.consistency_proof(old.size, latest.size).await.unwrap();
    verify_consistency(
        old.size,
        latest.size,
        &old.root_hash,
        &latest.root_hash,
        &proof,
    )
    .unwrap();
}

#[tokio::test]
async fn exported_json_lines_round_trip_and_verify() {
    let (_, lines, heads) = build_log(50, 10).await;
    let text: String = lines
        .iter()
        .map(|l| serde_json::to_string(l).unwrap() + "\n")
        .collect();
    let parsed: Vec<ExportedEntry> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let heads_json = serde_json::to_string(&heads).unwrap();
    let heads: Vec<SignedTreeHead> = serde_json::from_str(&heads_json).unwrap();
    verify_log(&parsed, &heads, &key()).unwrap();
    // The leaf hash is SHA-256(0x00 ‖ canonical JSON of the "entry" member).
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let canonical = warren_audit::canonical::to_canonical(&first["entry"]).unwrap();
    assert_eq!(
        leaf_hash(canonical.as_bytes()).to_string(),
        first["leaf_hash"].as_str().unwrap()
    );
}

#[tokio::test]
async fn edited_entry_is_reported_at_its_index() {
    let (_, mut lines, heads) = build_log(N, EVERY).await;
    lines[437].entry.actor[0] = "user:mallory".into();
    let err = verify_log(&lines, &heads, &key()).unwrap_err();
    assert_eq!(err, VerifyError::LeafHashMismatch { index: 437 });
    assert_eq!(err.first_bad_index(), Some(437));
}

#[tokio::test]
async fn edited_entry_with_rewritten_hashes_is_caught_by_the_next_signed_head() {
    let (_, mut lines, heads) = build_log(N, EVERY).await;
    lines[437].entry.outcome = warren_audit::Outcome::Ok;
    lines[437].entry.details.insert("seq".into(), 1.into());
    lines[437].leaf_hash = Some(lines[437].entry.leaf_hash().unwrap());
    let err = verify_log(&lines, &heads, &key()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::HeadMismatch {
                head_size: 500,
                from: 400,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.first_bad_index(), Some(400));

    // Without recorded leaf hashes the same head pins it down.
    let bare: Vec<ExportedEntry> = lines
        .into_iter()
        .map(|l| ExportedEntry {
            leaf_hash: None,
            ..l
        })
        .collect();
    let err = verify_log(&bare, &heads, &key()).unwrap_err();
    assert!(matches!(
        err,
        VerifyError::HeadMismatch {
            head_size: 500,
            from: 400,
            ..
        }
    ));
}

#[tokio::test]
async fn deleted_entry_is_reported_where_the_gap_starts() {
    let (_, mut lines, heads) = build_log(N, EVERY).await;
    lines.remove(437);
    let err = verify_log(&lines, &heads, &key()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::IndexMismatch {
            position: 437,
            found: 438
        }
    );
    assert_eq!(err.first_bad_index(), Some(437));
}

#[tokio::test]
async fn swapped_entries_are_reported_at_the_first_of_the_pair() {
    let (_, lines, heads) = build_log(N, EVERY).await;
    let mut swapped = lines.clone();
    swapped.swap(437, 612);
    let err = verify_log(&swapped, &heads, &key()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::IndexMismatch {
            position: 437,
            found: 612
        }
    );

    // Swapping the contents but keeping the indices in order changes both
    // leaves: the first one is reported.
    let mut relabelled = lines;
    let (a, b) = (relabelled[437].entry.clone(), relabelled[612].entry.clone());
    relabelled[437].entry = warren_audit::AuditEntry { index: 437, ..b };
    relabelled[612].entry = warren_audit::AuditEntry { index: 612, ..a };
    let err = verify_log(&relabelled, &heads, &key()).unwrap_err();
    assert_eq!(err, VerifyError::LeafHashMismatch { index: 437 });
}

#[tokio::test]
async fn truncated_log_is_a_rollback_below_a_signed_head() {
    let (_, mut lines, heads) = build_log(N, EVERY).await;
    lines.truncate(950);
    let err = verify_log(&lines, &heads, &key()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Truncated {
                head_size: 1000,
                log_size: 950,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.first_bad_index(), Some(950));
    // Cut exactly at a signed size, the heads up to there still verify.
    lines.truncate(900);
    let mut earlier: Vec<SignedTreeHead> = heads[..9].to_vec();
    assert!(verify_log(&lines, &earlier, &key()).is_ok());
    earlier.push(heads[9].clone());
    assert_eq!(
        verify_log(&lines, &earlier, &key())
            .unwrap_err()
            .first_bad_index(),
        Some(900)
    );
}

#[tokio::test]
async fn checkpoint_that_the_current_log_does_not_extend_is_reported() {
    // An auditor saved the head of size 500 earlier.
    let (_, original, original_heads) = build_log(N, EVERY).await;
    let checkpoint = original_heads[4].clone();
    assert_eq!(checkpoint.size, 500);

    // Later the log was rewritten from entry 437 on by someone holding the
    // signing key: every recorded hash and every head is consistent again.
    let mut log = warren_audit::MerkleLog::open(warren_audit::MemoryStore::new())
        .await
        .unwrap();
    let key = test_key();
    let mut lines = Vec::new();
    let mut heads = Vec::new();
    for i in 0..N {
        let mut entry = original[i as usize].entry.clone();
        if i == 437 {
            entry.target = "sb_innocent".into();
        }
        log.append(&mut entry).await.unwrap();
        let leaf = entry.leaf_hash().unwrap();
        lines.push(ExportedEntry {
            entry,
            leaf_hash: Some(leaf),
        });
        if (i + 1).is_multiple_of(EVERY) {
            heads.push(
                log.tree_head(1_900_000_000_000 + i)
                    .await
                    .unwrap()
                    .sign(&key),
            );
        }
    }
    assert!(verify_log(&lines, &heads, &key.verifying_key()).is_ok());

    heads.push(checkpoint);
    let err = verify_log(&lines, &heads, &key.verifying_key()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::HeadMismatch {
                head_size: 500,
                from: 400,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn head_signed_by_another_key_is_refused() {
    let (log, lines, mut heads) = build_log(200, EVERY).await;
    let other = SigningKey::from_bytes(&[9; 32]);
    heads.push(log.tree_head(1).await.unwrap().sign(&other));
    let err = verify_log(&lines, &heads, &key()).unwrap_err();
    assert!(
        matches!(err, VerifyError::BadHead { position: 2, .. }),
        "{err:?}"
    );
    assert_eq!(err.first_bad_index(), None);
}

#[tokio::test]
async fn unhashable_entry_is_reported_not_panicked_on() {
    let (_, mut lines, heads) = build_log(20, 10).await;
    lines[3]
        .entry
        .details
        .insert("load".into(), serde_json::json!(0.5));
    let err = verify_log(&lines, &heads, &key()).unwrap_err();
    assert!(
        matches!(err, VerifyError::Unhashable { index: 3, .. }),
        "{err:?}"
    );
}
