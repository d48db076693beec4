//! What the daemon acknowledged (answered 2xx to): the only things the
//! invariants hold it to. An operation whose answer was lost with the
//! daemon may or may not have happened; it is never checked.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Every sandbox whose create (or fork) was acknowledged, by id.
    pub sandboxes: BTreeMap<String, Tracked>,
    /// Acknowledged operations by kind, for the report.
    pub acked: BTreeMap<&'static str, usize>,
    /// Completed exec streams with the wrong output (a violation each).
    pub wrong_execs: Vec<String>,
    /// How long each acknowledged operation took, by kind, since the
    /// last [`Ledger::take_latencies`].
    pub latencies: BTreeMap<&'static str, Vec<Duration>>,
    /// Operations not acknowledged, by kind and answer (the status, or
    /// `no answer`).
    pub missed: BTreeMap<(&'static str, String), usize>,
    /// Set to stop the clients after their current operation.
    pub stop: bool,
    next_file: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Tracked {
    /// Path → (SHA-256 in hex, size) of every acknowledged upload. Each
    /// upload has a path of its own, so one lost in flight never shadows
    /// an acknowledged one.
    pub files: BTreeMap<String, (String, u64)>,
    /// Ids of acknowledged snapshots (named, and the forks' own).
    pub snapshots: BTreeSet<String>,
    /// Its kill was acknowledged, or it was found killed or failed.
    pub gone: bool,
}

impl Ledger {
    /// Records an acknowledged operation of `kind` that took `took`.
    pub fn ack(&mut self, kind: &'static str, took: Duration) {
        *self.acked.entry(kind).or_default() += 1;
        self.latencies.entry(kind).or_default().push(took);
    }

    /// Records an operation of `kind` the daemon did not acknowledge.
    pub fn miss(&mut self, kind: &'static str, answer: String) {
        *self.missed.entry((kind, answer)).or_default() += 1;
    }

    /// The latencies recorded since the last call.
    pub fn take_latencies(&mut self) -> BTreeMap<&'static str, Vec<Duration>> {
        std::mem::take(&mut self.latencies)
    }

    /// Ids of sandboxes not known to be gone.
    pub fn live(&self) -> Vec<String> {
        self.sandboxes
            .iter()
            .filter(|(_, t)| !t.gone)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// A path no upload used before.
    pub fn new_path(&mut self) -> String {
        self.next_file += 1;
        format!("/tmp/chaos/f{}.bin", self.next_file)
    }
}
