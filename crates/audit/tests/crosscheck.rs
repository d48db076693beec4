//! Roots and proofs agree with an independent implementation (`ct-merkle`)
//! for random sizes up to 2048, with the RFC's recursive definitions for
//! every small case, and verify; mangled proofs do not.

mod common;

use common::{Rng, ceil_log2, naive_consistency, naive_path, naive_root};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use sha2::Sha256;
use warren_audit::{
    Hash, MemoryStore, MerkleLog, ProofError, leaf_hash, verify_consistency, verify_inclusion,
};

const MAX: u64 = 2048;

fn data(i: u64) -> Vec<u8> {
    format!("leaf-{i}").into_bytes()
}

async fn log_of(n: u64) -> (MerkleLog<MemoryStore>, Vec<Hash>) {
    let mut log = MerkleLog::open(MemoryStore::new()).await.unwrap();
    let mut leaves = Vec::new();
    for i in 0..n {
        let leaf = leaf_hash(&data(i));
        log.append_leaf(leaf).await.unwrap();
        leaves.push(leaf);
    }
    (log, leaves)
}

fn flat(proof: &[Hash]) -> Vec<u8> {
    proof.iter().flat_map(|h| h.0).collect()
}

#[tokio::test]
async fn agrees_with_ct_merkle_for_random_sizes() {
    let (log, _) = log_of(MAX).await;
    let mut rng = Rng(0xa11d);
    let mut sizes: Vec<u64> = (0..80).map(|_| rng.range(1, MAX + 1)).collect();
    sizes.extend([1, 2, 3, 255, 256, 257, 1023, 1024, 1025, MAX]);
    sizes.sort_unstable();
    sizes.dedup();

    let mut ct: MemoryBackedTree<Sha256, Vec<u8>> = MemoryBackedTree::new();
    let mut checked = 0;
    for size in sizes {
        while ct.len() < size {
            ct.push(data(ct.len()));
        }
        let root = log.root(size).await.unwrap();
        assert_eq!(
            root.0.as_slice(),
            ct.root().as_bytes().as_slice(),
            "root of {size}"
        );

        let mut indices: Vec<u64> = (0..8).map(|_| rng.range(0, size)).collect();
        indices.extend([0, size - 1]);
        for index in indices {
            let ours = log.inclusion_proof(index, size).await.unwrap();
            let theirs = ct.prove_inclusion(index as usize);
            assert_eq!(
                flat(&ours),
                theirs.as_bytes(),
                "inclusion {index} in {size}"
            );
            assert!(ours.len() <= ceil_log2(size), "inclusion proof too long");
            verify_inclusion(&leaf_hash(&data(index)), index, size, &ours, &root).unwrap();
            checked += 1;
        }

        let mut olds: Vec<u64> = (0..8).map(|_| rng.range(1, size + 1)).collect();
        olds.push(1);
        for old in olds.into_iter().filter(|&o| o < size) {
            let ours = log.consistency_proof(old, size).await.unwrap();
            let theirs = ct.prove_consistency((size - old) as usize);
            assert_eq!(
                flat(&ours),
                theirs.as_bytes(),
                "consistency {old} -> {size}"
            );
            assert!(
                ours.len() <= ceil_log2(size) + 1,
                "consistency proof too long"
            );
            let old_root = log.root(old).await.unwrap();
            verify_consistency(old, size, &old_root, &root, &ours).unwrap();
            checked += 1;
        }
    }
    assert!(checked > 1000, "only {checked} proofs checked");
}

#[tokio::test]
async fn every_proof_of_small_trees_matches_the_rfc_definitions() {
    let (log, leaves) = log_of(70).await;
    for n in 0..=70u64 {
        let prefix = &leaves[..n as usize];
        let root = log.root(n).await.unwrap();
        assert_eq!(root, naive_root(prefix), "root of {n}");
        for m in 0..n {
            let path = log.inclusion_proof(m, n).await.unwrap();
            assert_eq!(path, naive_path(m as usize, prefix), "path {m} in {n}");
            verify_inclusion(&leaves[m as usize], m, n, &path, &root).unwrap();
        }
        for m in 0..=n {
            let proof = log.consistency_proof(m, n).await.unwrap();
            assert_eq!(proof, naive_consistency(m as usize, prefix), "{m} -> {n}");
            let old_root = log.root(m).await.unwrap();
            verify_consistency(m, n, &old_root, &root, &proof).unwrap();
        }
    }
}

#[tokio::test]
async fn mangled_inclusion_proofs_are_refused() {
    let (log, leaves) = log_of(100).await;
    for n in [2u64, 3, 7, 64, 100] {
        let root = log.root(n).await.unwrap();
        for m in 0..n {
            let leaf = leaves[m as usize];
            let path = log.inclusion_proof(m, n).await.unwrap();
            for i in 0..path.len() {
                let mut bad = path.clone();
                bad[i].0[5] ^= 1;
                assert!(verify_inclusion(&leaf, m, n, &bad, &root).is_err());
            }
            let mut longer = path.clone();
            longer.push(root);
            assert!(matches!(
                verify_inclusion(&leaf, m, n, &longer, &root),
                Err(ProofError::BadLength { .. })
            ));
            assert!(verify_inclusion(&leaf, m, n, &path[..path.len() - 1], &root).is_err());
            assert!(verify_inclusion(&leaves[(m as usize + 1) % 100], m, n, &path, &root).is_err());
            if m + 1 < n {
                assert!(verify_inclusion(&leaf, m + 1, n, &path, &root).is_err());
            }
            assert_eq!(
                verify_inclusion(&leaf, n, n, &path, &root),
                Err(ProofError::IndexOutOfRange { index: n, size: n })
            );
        }
    }
}

#[tokio::test]
async fn mangled_consistency_proofs_are_refused() {
    let (log, _) = log_of(100).await;
    for n in [2u64, 5, 8, 33, 100] {
        let root = log.root(n).await.unwrap();
        for m in 1..n {
            let old_root = log.root(m).await.unwrap();
            let proof = log.consistency_proof(m, n).await.unwrap();
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i].0[0] ^= 0x80;
                assert!(
                    verify_consistency(m, n, &old_root, &root, &bad).is_err(),
                    "{m}->{n}"
                );
            }
            assert!(verify_consistency(m, n, &old_root, &root, &proof[1..]).is_err());
            assert!(verify_consistency(m, n, &root, &root, &proof).is_err());
            assert!(verify_consistency(m, n, &old_root, &old_root, &proof).is_err());
            assert!(verify_consistency(n, m, &root, &old_root, &proof).is_err());
        }
        assert!(verify_consistency(n, n, &root, &root, &[]).is_ok());
        assert!(verify_consistency(n, n, &root, &log.root(1).await.unwrap(), &[]).is_err());
        assert!(verify_consistency(0, n, &warren_audit::empty_root(), &root, &[]).is_ok());
    }
}

#[tokio::test]
async fn proofs_beyond_the_log_are_errors_not_panics() {
    let (log, _) = log_of(10).await;
    assert!(log.root(11).await.is_err());
    assert!(log.inclusion_proof(10, 10).await.is_err());
    assert!(log.inclusion_proof(0, 11).await.is_err());
    assert!(log.consistency_proof(5, 3).await.is_err());
    assert!(log.consistency_proof(5, 11).await.is_err());
    assert!(log.inclusion_proof(u64::MAX, u64::MAX).await.is_err());
}
