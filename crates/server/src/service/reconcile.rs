//! Start-up reconciliation: make the store and the runtime agree after the
//! daemon stopped (cleanly or not).
//!
//! | store says            | runtime has it live | action                          |
//! |-----------------------|---------------------|---------------------------------|
//! | running               | yes                 | re-attach the agent             |
//! | running               | no                  | mark failed (it died with us)   |
//! | pausing               | yes                 | back to running (the pause never committed) |
//! | pausing               | no                  | mark failed, tear down          |
//! | paused                | yes                 | stop the instance (the pause committed) |
//! | resuming              | either              | stop the instance, back to paused (the image is intact) |
//! | creating              | either              | mark failed, tear down          |
//! | killed / failed / —   | yes                 | tear down (a leak otherwise)    |
//! | killed / failed, slot not released | either | tear down again (it never finished); record its end if the audit log has none |

use std::collections::HashSet;

use warren_core::{SandboxState, Transition, WarrenError};
use warren_store::SandboxFilter;

use super::Sandboxes;
use crate::agents::Agents;

/// What reconciliation did, for the log and for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub reattached: usize,
    pub failed: usize,
    pub torn_down: usize,
    /// Ends committed but not recorded before the daemon stopped (see
    /// `unrecorded`).
    pub recorded: usize,
}

impl Sandboxes {
    pub async fn reconcile(&self) -> Result<Report, WarrenError> {
        let mut report = Report::default();
        let live = self.runtime.list_live().await?;
        let records = self.store.list_sandboxes(&SandboxFilter::default()).await?;
        let live_ids: HashSet<_> = live.iter().map(|i| i.id.clone()).collect();
        let mut known = HashSet::new();

        for rec in records {
            known.insert(rec.id.clone());
            let is_live = live_ids.contains(&rec.id);
            match rec.state {
                SandboxState::Running | SandboxState::Pausing if is_live => {
                    let (addr, origin) = live
                        .iter()
                        .find(|i| i.id == rec.id)
                        .map(|i| (i.agent_addr, i.origin))
                        .expect("is_live implies present");
                    let ready = match self.agents.attach(&rec.id, addr, origin) {
                        Ok(client) => Agents::wait_ready(&client).await.is_ok(),
                        Err(_) => false,
                    };
                    let back = rec.state == SandboxState::Running
                        || self.transition(&rec.id, Transition::Started).await.is_ok();
                    // The daemon replaced its firewall table at start-up:
                    // the sandbox gets its rules back before anything else.
                    let enforced = match self.network.apply(&rec, addr.ip()).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!(sandbox = %rec.id, error = %e.message, "could not enforce the network policy");
                            false
                        }
                    };
                    if ready && back && enforced {
                        report.reattached += 1;
                        continue;
                    }
                    tracing::warn!(sandbox = %rec.id, "live sandbox's agent does not answer");
                    self.fail_and_teardown(&rec.id).await;
                    report.failed += 1;
                }
                SandboxState::Paused | SandboxState::Resuming => {
                    if is_live && let Err(e) = self.runtime.stop(&rec.id).await {
                        tracing::warn!(sandbox = %rec.id, error = %e, "could not stop a paused sandbox's instance");
                    }
                    if rec.state == SandboxState::Resuming
                        && let Err(e) = self.transition(&rec.id, Transition::Paused).await
                    {
                        tracing::warn!(sandbox = %rec.id, error = %e.message, "could not mark an interrupted resume paused");
                    }
                }
                _ => {
                    self.fail_and_teardown(&rec.id).await;
                    report.failed += 1;
                }
            }
        }
        let unreleased = self.store.unreleased_sandboxes().await?;
        for id in &unreleased {
            if self.record_unrecorded_end(id).await {
                report.recorded += 1;
            }
        }
        for id in live
            .into_iter()
            .map(|i| i.id)
            .filter(|id| !known.contains(id))
            .chain(unreleased)
            .collect::<HashSet<_>>()
        {
            self.teardown.enqueue(id);
            report.torn_down += 1;
        }
        tracing::info!(
            reattached = report.reattached,
            failed = report.failed,
            torn_down = report.torn_down,
            recorded = report.recorded,
            "reconciled sandboxes with the runtime"
        );
        Ok(report)
    }

    async fn fail_and_teardown(&self, id: &warren_core::SandboxId) {
        let reconciler = crate::audit::AuditActor::system("reconcile");
        self.fail(
            id,
            &reconciler,
            "the runtime lost the sandbox while the daemon was down",
        )
        .await;
    }
}
