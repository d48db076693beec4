//! Fuzz targets for what an auditor reads from a log it does not trust:
//! inclusion and consistency proofs, and an export with its signed heads
//! and checkpoints. Budget and reproduction: see the `warren-fuzz` crate.

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;

use common::{build_log, test_key};
use warren_audit::{
    ExportedEntry, Hash, SignedTreeHead, TreeHead, verify_consistency, verify_inclusion, verify_log,
};
use warren_fuzz::{Target, corpus_dir};

/// Leaves of the reference log the proofs are checked against.
const N: u64 = 24;

fn target(name: &str) -> Target {
    Target::new(name, corpus_dir(env!("CARGO_MANIFEST_DIR"), name))
}

/// The reference log: its leaves, roots and every proof of its sizes.
struct Reference {
    leaves: Vec<Hash>,
    roots: Vec<Hash>,
    inclusion: HashMap<(u64, u64), Vec<Hash>>,
    consistency: HashMap<(u64, u64), Vec<Hash>>,
}

fn reference() -> Reference {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (log, lines, _) = build_log(N, N).await;
        let leaves = lines.iter().map(|l| l.entry.leaf_hash().unwrap()).collect();
        let mut roots = Vec::new();
        let mut inclusion = HashMap::new();
        let mut consistency = HashMap::new();
        for size in 0..=N {
            roots.push(log.root(size).await.unwrap());
            for other in 0..=size {
                if other < size {
                    inclusion.insert(
                        (other, size),
                        log.inclusion_proof(other, size).await.unwrap(),
                    );
                }
                consistency.insert(
                    (other, size),
                    log.consistency_proof(other, size).await.unwrap(),
                );
            }
        }
        Reference {
            leaves,
            roots,
            inclusion,
            consistency,
        }
    })
}

/// Reads the fields of a proof check from fuzz bytes; past the end, zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take<const K: usize>(&mut self) -> [u8; K] {
        let mut out = [0u8; K];
        let n = K.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }
    fn hash(&mut self) -> Hash {
        Hash::from_slice(&self.take::<32>()).unwrap()
    }
    fn rest_hashes(&mut self) -> Vec<Hash> {
        let hashes = self.0.chunks(32).map(|c| {
            let mut h = [0u8; 32];
            h[..c.len()].copy_from_slice(c);
            Hash::from_slice(&h).unwrap()
        });
        let hashes = hashes.collect();
        self.0 = &[];
        hashes
    }
}

/// First byte: bit 0 inclusion or consistency, bit 1 sizes within the
/// reference log (else any u64), bit 2 the reference's own leaf, roots and
/// proof, bit 3 one bit of that proof flipped. Against the reference's
/// roots, a proof verifies only when it is the reference's own.
fn proofs(reference: &Reference, bytes: &[u8]) {
    let mut input = Input(bytes);
    let [mode] = input.take();
    let (inclusion, small, genuine, tamper) =
        (mode & 1 == 0, mode & 2 != 0, mode & 4 != 0, mode & 8 != 0);
    let (a, b) = if small {
        let [a, b] = input.take();
        (u64::from(a) % (N + 1), u64::from(b) % (N + 1))
    } else {
        (input.u64(), input.u64())
    };
    let real =
        |map: &HashMap<(u64, u64), Vec<Hash>>| small.then(|| map.get(&(a, b)).cloned()).flatten();
    let flip = |mut proof: Vec<Hash>, at: [u8; 2]| {
        if tamper && !proof.is_empty() {
            let i = usize::from(at[0]) % proof.len();
            let mut bytes = *proof[i].as_bytes();
            bytes[usize::from(at[1]) % 32] ^= 1 << (at[1] % 8);
            proof[i] = Hash::from_slice(&bytes).unwrap();
        }
        proof
    };
    if inclusion {
        let (index, size) = (a, b);
        let reference_proof = real(&reference.inclusion);
        let (leaf, root, proof) = match (&reference_proof, genuine) {
            (Some(p), true) => (
                reference.leaves[index as usize],
                reference.roots[size as usize],
                flip(p.clone(), input.take()),
            ),
            _ => (input.hash(), input.hash(), input.rest_hashes()),
        };
        let verdict = verify_inclusion(&leaf, index, size, &proof, &root);
        // Against the reference's root, only its own leaf and proof verify.
        if let Some(p) = reference_proof
            && root == reference.roots[size as usize]
        {
            let faithful = proof == p && leaf == reference.leaves[index as usize];
            assert_eq!(
                verdict.is_ok(),
                faithful,
                "inclusion of {index} in {size}: {verdict:?}"
            );
        }
    } else {
        let (old, new) = (a.min(b), a.max(b));
        let swapped = a > b;
        let reference_proof = small.then(|| reference.consistency[&(old, new)].clone());
        let (old_root, new_root, proof) = match (&reference_proof, genuine) {
            (Some(p), true) => (
                reference.roots[old as usize],
                reference.roots[new as usize],
                flip(p.clone(), input.take()),
            ),
            _ => (input.hash(), input.hash(), input.rest_hashes()),
        };
        let (from, to) = if swapped { (new, old) } else { (old, new) };
        let verdict = verify_consistency(from, to, &old_root, &new_root, &proof);
        // Between the reference's roots, only its own proof verifies.
        if let Some(p) = reference_proof
            && old_root == reference.roots[old as usize]
            && new_root == reference.roots[new as usize]
        {
            let faithful = (!swapped || old == new) && proof == p;
            assert_eq!(
                verdict.is_ok(),
                faithful,
                "consistency {from} -> {to}: {verdict:?}"
            );
        }
    }
}

#[test]
fn fuzz_audit_proofs() {
    let reference = reference();
    let mut t = target("audit_proofs");
    for mode in [0u8, 1] {
        for (a, b) in [(0u8, 1u8), (5, 13), (7, 8), (0, 24), (16, 24), (3, 3)] {
            t = t
                .seed([mode | 2 | 4, a, b, 0, 0])
                .seed([mode | 2 | 4 | 8, a, b, 1, 9]);
        }
        let mut raw = vec![mode];
        raw.extend_from_slice(&u64::MAX.to_be_bytes());
        raw.extend_from_slice(&(u64::MAX - 1).to_be_bytes());
        raw.extend_from_slice(&[0xab; 96]);
        t = t.seed(raw);
    }
    t.run(|bytes| proofs(&reference, bytes));
}

/// An export as `warren audit verify` reads it: one JSON object a line,
/// signed heads (and checkpoints) and entries in any order.
fn checkpoints(key: &warren_audit::VerifyingKey, bytes: &[u8]) {
    let mut heads = Vec::new();
    let mut entries = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        if let Ok(head) = serde_json::from_slice::<SignedTreeHead>(line) {
            let again: SignedTreeHead =
                serde_json::from_slice(&serde_json::to_vec(&head).unwrap()).unwrap();
            assert_eq!(again, head);
            if let Ok(verified) = head.verify(key) {
                assert_eq!(verified, head.head());
            }
            heads.push(head);
        } else if let Ok(entry) = serde_json::from_slice::<ExportedEntry>(line) {
            let again: ExportedEntry =
                serde_json::from_slice(&serde_json::to_vec(&entry).unwrap()).unwrap();
            // Only integers are hashable (floats are refused, and serde_json
            // may read a float back one unit in the last place off).
            if let Ok(bytes) = entry.entry.canonical_bytes() {
                assert_eq!(again, entry);
                assert_eq!(again.entry.canonical_bytes().unwrap(), bytes);
            }
            entries.push(entry);
        } else {
            let _ = serde_json::from_slice::<TreeHead>(line);
        }
    }
    if let Ok(report) = verify_log(&entries, &heads, key) {
        assert_eq!(report.size, entries.len() as u64);
        assert!(report.latest_head.is_none_or(|h| h.size <= report.size));
    }
}

#[test]
fn fuzz_audit_checkpoints() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (_, lines, heads) = rt.block_on(build_log(6, 3));
    let mut export = Vec::new();
    for head in &heads {
        export.extend(serde_json::to_vec(head).unwrap());
        export.push(b'\n');
    }
    for line in &lines {
        export.extend(serde_json::to_vec(line).unwrap());
        export.push(b'\n');
    }
    let key = test_key().verifying_key();
    target("audit_checkpoints")
        .seed(export)
        .tokens([
            &b"\"index\":"[..],
            b"\"size\":",
            b"\"leaf_hash\":",
            b"\"signature\":\"",
            b"\"details\":{\"n\":1.5}",
            b"18446744073709551615",
            b"\n",
            b"\"root_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\"",
        ])
        .run(|bytes| checkpoints(&key, bytes));
}
