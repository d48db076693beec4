//! Lifecycle entries of the audit log: the one function every sandbox state
//! change is recorded through (create, kill, expire, fail, pause, resume,
//! fork, snapshot). It is also where lifecycle webhooks are tapped
//! (`webhooks::Webhooks::emit`), after the entry, and live views told
//! (`changes`). Commands, file writes and
//! terminals are recorded where they end (`exec.rs`, `files.rs`, `pty.rs`).

use serde_json::{Map, Value};
use warren_audit::Outcome;
use warren_core::SandboxId;

use super::Sandboxes;
use crate::audit::Action;
use crate::audit::{AuditActor, Event};

/// Details of an entry from `(key, value)` pairs.
pub(crate) fn details<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

impl Sandboxes {
    /// Records lifecycle `action` (`sandbox.create`, `sandbox.kill`,
    /// `sandbox.expire`, `sandbox.fail` …) of sandbox `id` by `actor`, in
    /// the sandbox's team (also when the daemon itself acted). The
    /// transition has happened: a failure to record is logged, not returned.
    pub(crate) async fn record_lifecycle(
        &self,
        actor: &AuditActor,
        id: &SandboxId,
        action: Action,
        outcome: Outcome,
        details: Map<String, Value>,
    ) {
        let rec = self.store.get_sandbox(id).await.ok().flatten();
        let actor = match &rec {
            Some(rec) => actor.in_team(&rec.team),
            None => actor.clone(),
        };
        let mut event = Event::sandbox(action, id, outcome);
        event.details = details;
        let details = event.details.clone();
        self.audit.record_done(&actor, event).await;
        if let Some(rec) = rec {
            self.changes.publish(&rec);
            self.webhooks.emit(&rec, action, outcome, &details).await;
        }
    }
}
