//! Delivery of inbox events inside their sandbox (`docs/events.md`).
//!
//! - **Pull.** A process inside long-polls `GET /v1/self/events` with its
//!   sandbox token: it gets the events after its position that are not
//!   acknowledged, or waits (at most [`MAX_WAIT`]) for the next one. A
//!   per-sandbox watch channel, bumped after each commit, wakes waiters;
//!   they always read the store, so a missed bump costs at most the wait.
//!   `POST /v1/self/events/ack {seq}` acknowledges every event up to
//!   `seq`. What is not acknowledged is handed out again to whoever asks,
//!   so a process restored from a snapshot, or a new one after a crash,
//!   reads it again: delivery is at least once, exactly once per
//!   acknowledgement, in order.
//! - **Wake.** An event whose type the sandbox's wake policy names
//!   resumes it when it is paused. The send path only queues the wake; the
//!   inbox worker resumes, one resume per sandbox at a time.
//! - **Handler.** A sandbox created with `on_event` has the worker run
//!   that command inside it for each event in order (the event's JSON on
//!   stdin): exit 0 acknowledges, anything else runs it again after a
//!   backoff (1 s doubling to [`MAX_BACKOFF`]). The worker drains an inbox
//!   when an event arrives, when the sandbox starts or resumes, and at
//!   daemon start; a pause ends the drain, the resume starts it again.
//! - **Retention.** The worker deletes events acknowledged more than the
//!   retention period ago ([`RETENTION`]); unacknowledged ones stay.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use warren_api_types::{ExecEvent, ExecRequest};
use warren_audit::Outcome;
use warren_core::inbox::WakePolicy;
use warren_core::{SandboxId, SandboxState, WarrenError};
use warren_store::{EventRecord, InboxRecord};

use super::Sandboxes;
use crate::audit::{Action, AuditActor, Event};

/// Longest a long-poll waits for an event.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Most long-polls one sandbox may hold open at once.
pub const MAX_WAITERS: usize = 32;
/// How long acknowledged events are kept.
pub const RETENTION: time::Duration = time::Duration::days(7);
/// Longest pause between runs of a failing handler.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often acknowledged events past retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// What the inbox worker is asked to do.
enum Job {
    /// Resume a paused sandbox an event woke.
    Wake(SandboxId),
    /// Run the sandbox's handler for its waiting events.
    Drain(SandboxId),
}

/// The inbox's moving parts: the watch channels long-polls wait on and the
/// queue of the inbox worker.
pub(crate) struct InboxWork {
    signals: Mutex<HashMap<SandboxId, watch::Sender<u64>>>,
    jobs: mpsc::UnboundedSender<Job>,
    queue: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
}

impl Default for InboxWork {
    fn default() -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        Self {
            signals: Mutex::default(),
            jobs,
            queue: Mutex::new(Some(queue)),
        }
    }
}

impl InboxWork {
    fn subscribe(&self, id: &SandboxId) -> Result<Waiter<'_>, WarrenError> {
        let mut signals = self.signals.lock().expect("inbox signals lock");
        let tx = signals
            .entry(id.clone())
            .or_insert_with(|| watch::channel(0).0);
        if tx.receiver_count() >= MAX_WAITERS {
            return Err(WarrenError::new(
                warren_core::ErrorKind::ResourceExhausted,
                format!("sandbox {id} already holds {MAX_WAITERS} waits for events; end one first"),
            ));
        }
        Ok(Waiter {
            work: self,
            id: id.clone(),
            signal: Some(tx.subscribe()),
        })
    }

    /// Wakes the waiters of `id`; forgets channels nobody waits on.
    fn bump(&self, id: &SandboxId, seq: u64) {
        let mut signals = self.signals.lock().expect("inbox signals lock");
        if let Some(tx) = signals.get(id) {
            tx.send_replace(seq);
            if tx.receiver_count() == 0 {
                signals.remove(id);
            }
        }
    }

    fn queue(&self, job: Job) {
        // The receiver lives as long as the daemon's worker.
        let _ = self.jobs.send(job);
    }
}

/// One long-poll's wait on its sandbox's channel; the channel is forgotten
/// once nobody waits on it, however the wait ends (a client that goes away
/// drops it mid-wait).
struct Waiter<'a> {
    work: &'a InboxWork,
    id: SandboxId,
    signal: Option<watch::Receiver<u64>>,
}

impl Waiter<'_> {
    fn signal(&mut self) -> &mut watch::Receiver<u64> {
        self.signal
            .as_mut()
            .expect("a waiter holds its receiver until dropped")
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.signal = None;
        let mut signals = self.work.signals.lock().expect("inbox signals lock");
        if signals
            .get(&self.id)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            signals.remove(&self.id);
        }
    }
}

/// Doubling backoff for a failing handler.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(9)).min(MAX_BACKOFF)
}

impl Sandboxes {
    /// After a new event `seq` of `id` is committed: wakes long-polls,
    /// queues the handler, and resumes the sandbox if it sleeps and its
    /// wake policy names `kind`.
    pub(super) async fn on_new_event(
        &self,
        id: &SandboxId,
        seq: u64,
        kind: &str,
        state: SandboxState,
    ) {
        self.inbox_work.bump(id, seq);
        match state {
            SandboxState::Running => self.inbox_work.queue(Job::Drain(id.clone())),
            SandboxState::Paused | SandboxState::Pausing => match self.store.inbox(id).await {
                Ok(Some(inbox)) if inbox.settings.wake.wakes_on(kind) => {
                    self.inbox_work.queue(Job::Wake(id.clone()));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(sandbox = %id, error = %e, "could not read a wake policy"),
            },
            // Resuming or creating: the handler starts when it runs.
            _ => {}
        }
    }

    /// Queues the handler of `id` (after it starts or resumes).
    pub(super) fn drain_inbox(&self, id: &SandboxId) {
        self.inbox_work.queue(Job::Drain(id.clone()));
    }

    /// Events for the sandbox `id` itself after `after` that it has not
    /// acknowledged, waiting up to `wait` for one; and where its inbox
    /// stands.
    pub async fn self_events(
        &self,
        id: &SandboxId,
        after: u64,
        wait: Duration,
        limit: u32,
    ) -> Result<(Vec<EventRecord>, InboxRecord), WarrenError> {
        if limit == 0 || limit > super::events::MAX_EVENT_PAGE {
            return Err(WarrenError::invalid(format!(
                "limit must be 1-{}, got {limit}",
                super::events::MAX_EVENT_PAGE
            )));
        }
        if wait > MAX_WAIT {
            return Err(WarrenError::invalid(format!(
                "wait is at most {} seconds",
                MAX_WAIT.as_secs()
            )));
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut waiter = self.inbox_work.subscribe(id)?;
        loop {
            waiter.signal().borrow_and_update();
            let events = self
                .store
                .take_events(id, after, limit, self.clock.now())
                .await?;
            if !events.is_empty() || tokio::time::Instant::now() >= deadline {
                let inbox = self.inbox_of(id).await?;
                return Ok((events, inbox));
            }
            if tokio::time::timeout_at(deadline, waiter.signal().changed())
                .await
                .is_err()
            {
                let inbox = self.inbox_of(id).await?;
                return Ok((Vec::new(), inbox));
            }
        }
    }

    async fn inbox_of(&self, id: &SandboxId) -> Result<InboxRecord, WarrenError> {
        self.store
            .inbox(id)
            .await?
            .ok_or_else(|| WarrenError::not_found(format!("sandbox {id} not found")))
    }

    /// Acknowledges every event of `id` up to `seq`.
    pub async fn ack_events(
        &self,
        id: &SandboxId,
        seq: u64,
        actor: &AuditActor,
    ) -> Result<InboxRecord, WarrenError> {
        let (before, after) = self.store.ack_events(id, seq, self.clock.now()).await?;
        if after.acked_seq > before.acked_seq {
            let details = super::record::details([
                ("from", (before.acked_seq + 1).into()),
                ("to", after.acked_seq.into()),
            ]);
            // A lifecycle act: it is also the `event.delivered` webhook.
            self.record_lifecycle(actor, id, Action::EventAck, Outcome::Ok, details)
                .await;
        }
        Ok(after)
    }

    /// Replaces which events wake the paused sandbox `id`.
    pub async fn set_wake(
        &self,
        id: &SandboxId,
        wake: WakePolicy,
        actor: &AuditActor,
    ) -> Result<InboxRecord, WarrenError> {
        wake.validate()?;
        let rec = self.get(id).await?;
        let mut settings = self.inbox_of(&rec.id).await?.settings;
        settings.wake = wake;
        let inbox = self.store.set_inbox_settings(id, &settings).await?;
        let event = Event::sandbox(Action::InboxUpdate, id, Outcome::Ok)
            .with("wake_on", inbox.settings.wake.on.clone());
        self.audit.record_done(actor, event).await;
        Ok(inbox)
    }

    /// The inbox worker: wakes sandboxes, drains handlers, prunes old
    /// events; until `stop` turns true.
    pub async fn run_inbox(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let Some(mut queue) = self.inbox_work.queue.lock().expect("inbox queue").take() else {
            tracing::error!("the inbox worker runs once per daemon");
            return;
        };
        match self.store.pending_handlers().await {
            Ok(pending) => pending.iter().for_each(|i| self.drain_inbox(&i.sandbox)),
            Err(e) => tracing::warn!(error = %e, "could not list inboxes with waiting events"),
        }
        let busy: Arc<Mutex<HashSet<(bool, SandboxId)>>> = Arc::default();
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        loop {
            let job = tokio::select! {
                _ = stop.changed() => return,
                _ = prune.tick() => {
                    self.prune_inboxes().await;
                    continue;
                }
                job = queue.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            let (wake, id) = match job {
                Job::Wake(id) => (true, id),
                Job::Drain(id) => (false, id),
            };
            let key = (wake, id.clone());
            if !busy.lock().expect("inbox busy set").insert(key.clone()) {
                continue;
            }
            let this = self.clone();
            let busy = busy.clone();
            tokio::spawn(async move {
                if wake {
                    this.wake(&id).await;
                } else {
                    this.drain(&id).await;
                }
                busy.lock().expect("inbox busy set").remove(&key);
                // An event may have come while this one ran: look again.
                if !wake {
                    this.requeue_if_pending(&id).await;
                }
            });
        }
    }

    async fn wake(&self, id: &SandboxId) {
        let actor = AuditActor::system("inbox");
        match self.resume(id, &actor).await {
            Ok(_) => tracing::info!(sandbox = %id, "an event woke the sandbox"),
            Err(e) => {
                tracing::warn!(sandbox = %id, error = %e.message, "an event could not wake the sandbox")
            }
        }
    }

    async fn requeue_if_pending(&self, id: &SandboxId) {
        if let Ok(Some(inbox)) = self.store.inbox(id).await
            && inbox.settings.handler.is_some()
            && inbox.has_pending()
            && matches!(
                self.get(id).await.map(|r| r.state),
                Ok(SandboxState::Running)
            )
        {
            self.drain_inbox(id);
        }
    }

    /// Runs the handler of `id` for each waiting event, in order, while
    /// the sandbox runs.
    async fn drain(&self, id: &SandboxId) {
        let mut failures = 0u32;
        loop {
            let Ok(Some(inbox)) = self.store.inbox(id).await else {
                return;
            };
            let Some(handler) = inbox.settings.handler else {
                return;
            };
            if !matches!(
                self.get(id).await.map(|r| r.state),
                Ok(SandboxState::Running)
            ) {
                return;
            }
            let now = self.clock.now();
            let next = match self.store.take_events(id, inbox.acked_seq, 1, now).await {
                Ok(mut events) => match events.pop() {
                    Some(e) => e,
                    None => return,
                },
                Err(e) => {
                    tracing::warn!(sandbox = %id, error = %e, "could not read the inbox");
                    return;
                }
            };
            let actor = AuditActor::system("inbox");
            match self.run_handler(id, &handler.cmd, &next, &actor).await {
                Ok(0) => {
                    failures = 0;
                    if let Err(e) = self.ack_events(id, next.seq, &actor).await {
                        tracing::warn!(sandbox = %id, error = %e.message, "could not acknowledge an event");
                        return;
                    }
                }
                Ok(code) => {
                    tracing::info!(sandbox = %id, seq = next.seq, code, "the event handler failed; it runs again");
                    tokio::time::sleep(backoff(failures)).await;
                    failures += 1;
                }
                Err(e) => {
                    // Paused or gone: the loop's next look ends the drain.
                    tracing::warn!(sandbox = %id, error = %e.message, "the event handler could not run");
                    tokio::time::sleep(backoff(failures)).await;
                    failures += 1;
                }
            }
        }
    }

    /// Runs `cmd` in `id` with `event` as JSON on stdin; its exit code.
    async fn run_handler(
        &self,
        id: &SandboxId,
        cmd: &[String],
        event: &EventRecord,
        actor: &AuditActor,
    ) -> Result<i32, WarrenError> {
        let json = serde_json::to_string(&super::events::event_view(event.clone()))
            .map_err(|e| WarrenError::internal(format!("encoding an event: {e}")))?;
        let req = ExecRequest {
            cmd: cmd.to_vec(),
            stdin: Some(json),
            ..Default::default()
        };
        let mut stream = self.exec(id, req, actor.clone()).await?;
        while let Some(ev) = stream.next().await {
            if let ExecEvent::Exit {
                exit_code, error, ..
            } = ev
            {
                return match error {
                    Some(error) if exit_code < 0 => Err(WarrenError::unavailable(error)),
                    _ => Ok(exit_code),
                };
            }
        }
        Err(WarrenError::unavailable(
            "the handler's output ended without an exit",
        ))
    }

    async fn prune_inboxes(&self) {
        match self.store.prune_events(self.clock.now() - RETENTION).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "deleted acknowledged events past retention"),
            Err(e) => tracing::warn!(error = %e, "could not prune inboxes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_channel_is_forgotten_when_its_last_waiter_goes() {
        let work = InboxWork::default();
        let id = SandboxId::generate();
        let first = work.subscribe(&id).unwrap();
        let second = work.subscribe(&id).unwrap();
        drop(first);
        assert!(work.signals.lock().unwrap().contains_key(&id));
        drop(second);
        assert!(work.signals.lock().unwrap().is_empty());
    }

    #[test]
    fn waits_per_sandbox_are_bounded() {
        let work = InboxWork::default();
        let id = SandboxId::generate();
        let held: Vec<_> = (0..MAX_WAITERS)
            .map(|_| work.subscribe(&id).unwrap())
            .collect();
        assert!(work.subscribe(&id).is_err());
        drop(held);
        assert!(work.subscribe(&id).is_ok());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
