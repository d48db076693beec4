//! Ends that were committed but never recorded. A kill (or expiry, or
//! failure) makes the sandbox's new state durable first and appends its
//! audit entry after; a daemon that dies in between leaves a killed or
//! failed sandbox with no entry saying why.
//!
//! Invariant that makes this cheap to repair: the teardown of an ended
//! sandbox is queued only after its entry is recorded, and only a
//! confirmed teardown releases the sandbox's slot. So a sandbox whose end
//! has no entry is always among the unreleased ones, which start-up
//! reconciliation goes through: for each without an end entry it records
//! one by `system:reconcile`, saying the end was not recorded in time and
//! that who ended it is not known. A sandbox with no entry at all (a warm
//! pool's, retired before any team claimed it) is left unrecorded, as the
//! pool intends.

use serde_json::Map;
use warren_audit::Outcome;
use warren_core::{SandboxId, SandboxState};
use warren_store::AuditFilter;

use super::Sandboxes;
use crate::audit::{Action, AuditActor};

/// The actions that end a sandbox.
const ENDS: [Action; 3] = [
    Action::SandboxKill,
    Action::SandboxExpire,
    Action::SandboxFail,
];

impl Sandboxes {
    /// Records the end of `id` (killed or failed) if the audit log has
    /// none; whether it did.
    pub(crate) async fn record_unrecorded_end(&self, id: &SandboxId) -> bool {
        let state = match self.store.get_sandbox(id).await {
            Ok(Some(rec)) => rec.state,
            _ => return false,
        };
        let action = match state {
            SandboxState::Killed => Action::SandboxKill,
            SandboxState::Failed => Action::SandboxFail,
            _ => return false,
        };
        // A sandbox the log never heard of (a warm pool's, retired
        // unclaimed) gets no end either.
        if !self.has_entry(id, None).await {
            return false;
        }
        for end in ENDS {
            if self.has_entry(id, Some(end)).await {
                return false;
            }
        }
        let mut details = Map::new();
        let note = "ended before the daemon stopped, which recorded it only now; \
                    who ended it is not known";
        let (key, outcome) = match action {
            Action::SandboxFail => ("error", Outcome::Error),
            _ => ("note", Outcome::Ok),
        };
        details.insert(key.into(), note.into());
        details.insert("recovered".into(), true.into());
        tracing::warn!(sandbox = %id, %action, "recording an end the daemon did not record before it stopped");
        self.record_lifecycle(
            &AuditActor::system("reconcile"),
            id,
            action,
            outcome,
            details,
        )
        .await;
        true
    }

    /// Whether the audit log has an entry about `id` (with `action`); on a
    /// read error, yes (nothing is recorded then).
    async fn has_entry(&self, id: &SandboxId, action: Option<Action>) -> bool {
        let filter = AuditFilter {
            sandbox: Some(id.to_string()),
            action: action.map(|a| a.as_str().to_owned()),
            limit: 1,
            ..AuditFilter::default()
        };
        match self.audit().store().entries(&filter).await {
            Ok(found) => !found.is_empty(),
            Err(e) => {
                tracing::warn!(sandbox = %id, error = %e, "could not read the sandbox's audit entries");
                true
            }
        }
    }
}
