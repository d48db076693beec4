//! The delivery worker: every [`TICK`] it takes the deliveries due by the
//! daemon's clock and sends each in its own task, at most
//! [`super::CONCURRENCY`] at once (a slow receiver holds one slot for at
//! most [`super::TIMEOUT`], never the loop). A delivery in flight is not
//! taken again. Every attempt is recorded with the delivery's next state:
//! a 2xx is delivered; anything else is retried by [`super::backoff`] or,
//! past its window, failed. Once a minute events older than
//! [`super::RETENTION`] go.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use warren_store::{AttemptNext, AttemptRecord, DeliveryRecord};

use super::{Webhooks, backoff, new_id, payload};

/// How often the outbox is looked at.
pub const TICK: Duration = Duration::from_millis(250);
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Webhooks {
    /// Runs until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            self.dispatch_due().await;
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                let before = self.clock.now() - super::RETENTION;
                if let Err(e) = self.store.prune_lifecycle_events(before).await {
                    tracing::warn!(error = %e, "pruning old lifecycle events failed");
                }
            }
        }
    }

    async fn dispatch_due(self: &Arc<Self>) {
        let due = match self
            .store
            .due_deliveries(self.clock.now(), 4 * super::CONCURRENCY as u32)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "reading the webhook outbox failed");
                return;
            }
        };
        for d in due {
            let key = (d.webhook.clone(), d.event.id.clone());
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                return;
            };
            if !self.lock_inflight().insert(key.clone()) {
                continue;
            }
            let this = self.clone();
            tokio::spawn(async move {
                this.deliver(d).await;
                this.lock_inflight().remove(&key);
                drop(permit);
            });
        }
    }

    fn lock_inflight(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashSet<(String, String)>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One attempt at `d`, recorded.
    async fn deliver(&self, d: DeliveryRecord) {
        let Ok(Some(hook)) = self.store.get_webhook(&d.webhook).await else {
            return;
        };
        let started = self.clock.now();
        let attempt = d.attempts + 1;
        let outcome = match self.secret(&hook) {
            Err(e) => Err(format!("the secret cannot be opened: {e}")),
            Ok(secret) => match payload::render(
                hook.flavor,
                &hook.id,
                &secret,
                &d.event,
                started.unix_timestamp(),
                &new_id(),
            ) {
                Err(e) => Err(format!("cannot sign: {e}")),
                Ok(rendered) => self.sender.post(&hook.url, &rendered).await,
            },
        };
        let (status, error, response) = match outcome {
            Ok(a) => (Some(a.status), None, Some(a.body)),
            Err(e) => (None, Some(e), None),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let next = if delivered {
            AttemptNext::Delivered
        } else {
            let first = d.first_attempt_at.unwrap_or(started);
            backoff::after_failure(first, started, attempt, self.first_retry, rand::random())
        };
        tracing::debug!(webhook = %hook.id, event = %d.event.id, attempt, ?status, ?error, ?next, "webhook attempt");
        let record = AttemptRecord {
            attempt,
            at: started,
            status,
            error,
            response,
        };
        if let Err(e) = self
            .store
            .record_delivery_attempt(&d.webhook, &d.event.id, record, next)
            .await
        {
            tracing::warn!(webhook = %hook.id, event = %d.event.id, error = %e, "recording a webhook attempt failed");
        }
    }
}
