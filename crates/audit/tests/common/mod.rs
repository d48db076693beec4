//! Helpers shared by the integration tests.
#![allow(dead_code)]

use serde_json::json;
use warren_audit::{
    AuditEntry, ExportedEntry, Hash, MemoryStore, MerkleLog, Outcome, SignedTreeHead, SigningKey,
};

/// Deterministic pseudo-random numbers (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

pub fn sample_entry(i: u64) -> AuditEntry {
    let actions = [
        "sandbox.create",
        "process.exec",
        "file.write",
        "sandbox.kill",
    ];
    AuditEntry {
        index: 0,
        time_ms: 1_700_000_000_000 + i * 17,
        team: format!("team_{}", i % 3),
        actor: vec![
            format!("user:u{}", i % 5),
            format!("sandbox:sb_{:08}", i / 10),
        ],
        action: actions[(i % 4) as usize].to_owned(),
        target: format!("sb_{:08}", i / 10),
        outcome: if i.is_multiple_of(7) {
            Outcome::Denied
        } else {
            Outcome::Ok
        },
        details: json!({"seq": i, "argv": ["echo", i.to_string()]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

pub fn test_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

/// A log of `n` sample entries, its export (with leaf hashes) and heads
/// signed every `every` entries and at the end.
pub async fn build_log(
    n: u64,
    every: u64,
) -> (
    MerkleLog<MemoryStore>,
    Vec<ExportedEntry>,
    Vec<SignedTreeHead>,
) {
    let key = test_key();
    let mut log = MerkleLog::open(MemoryStore::new()).await.unwrap();
    let mut lines = Vec::new();
    let mut heads = Vec::new();
    for i in 0..n {
        let mut entry = sample_entry(i);
        let index = log.append(&mut entry).await.unwrap();
        assert_eq!(index, i);
        let leaf = log.store_leaf(index).await;
        lines.push(ExportedEntry {
            entry,
            leaf_hash: Some(leaf),
        });
        if (i + 1).is_multiple_of(every) || i + 1 == n {
            heads.push(
                log.tree_head(1_800_000_000_000 + i)
                    .await
                    .unwrap()
                    .sign(&key),
            );
        }
    }
    (log, lines, heads)
}

/// Reads a stored leaf hash back, as an export would.
pub trait StoreLeaf {
    async fn store_leaf(&self, index: u64) -> Hash;
}

impl StoreLeaf for MerkleLog<MemoryStore> {
    async fn store_leaf(&self, index: u64) -> Hash {
        use warren_audit::NodeStore as _;
        self.store().leaf(index).await.unwrap().unwrap()
    }
}

/// Merkle tree hash straight from RFC 9162 §2.1.1, recursively.
pub fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => warren_audit::empty_root(),
        1 => leaves[0],
        n => {
            let k = largest_pow2_below(n);
            warren_audit::node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]) from RFC 9162 §2.1.3.1, recursively.
pub fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = largest_pow2_below(n);
    if m < k {
        let mut p = naive_path(m, &leaves[..k]);
        p.push(naive_root(&leaves[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &leaves[k..]);
        p.push(naive_root(&leaves[..k]));
        p
    }
}

/// PROOF(m, D[n]) from RFC 9162 §2.1.4.1, recursively.
pub fn naive_consistency(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    fn sub(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if whole {
                Vec::new()
            } else {
                vec![naive_root(leaves)]
            };
        }
        let k = largest_pow2_below(n);
        if m <= k {
            let mut p = sub(m, &leaves[..k], whole);
            p.push(naive_root(&leaves[k..]));
            p
        } else {
            let mut p = sub(m - k, &leaves[k..], false);
            p.push(naive_root(&leaves[..k]));
            p
        }
    }
    if m == 0 || m == leaves.len() {
        return Vec::new();
    }
    sub(m, leaves, true)
}

fn largest_pow2_below(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

pub fn ceil_log2(n: u64) -> usize {
    if n <= 1 {
        0
    } else {
        (64 - (n - 1).leading_zeros()) as usize
    }
}
