//! Timers (`docs/events.md`, "Sources"): an event a sandbox's inbox gets
//! at a set time.
//!
//! A timer is a row of the store from its creation until its event is in
//! the inbox. The worker ([`Sandboxes::run_timers`]) sends every due timer
//! through [`Sandboxes::send_event`] with the dedupe key `timer:<id>` and
//! only then deletes the row, so a crash in between sends it again at the
//! next start and the inbox finds the first: a timer fires once. Time is
//! the daemon's [`crate::clock::Clock`]; a timer that fell due while the
//! daemon was down fires as soon as it is back. A timer whose sandbox is
//! gone (killed, failed) is dropped when it falls due; the rows go with
//! the sandbox's.

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore as _;
use time::OffsetDateTime;
use warren_core::{ErrorKind, KeyId, SandboxId, WarrenError};
use warren_store::TimerRecord;

use super::Sandboxes;
use super::events::{SentEvent, validate};
use crate::audit::{Action, AuditActor, Event};

/// Most pending timers one sandbox has.
pub const MAX_PENDING_TIMERS: u64 = 100;
/// Furthest ahead a timer may be set.
pub const MAX_AHEAD: time::Duration = time::Duration::days(365);
/// How often the worker looks for due timers.
const TICK: Duration = Duration::from_millis(500);
/// Most timers fired per tick.
const BATCH: u32 = 200;

/// When a timer fires, as asked.
pub enum When {
    At(OffsetDateTime),
    After(u64),
}

/// Reads `"90"`, `"90s"`, `"15m"`, `"1h30m"`, `"2d"` as seconds.
pub fn parse_after(raw: &str) -> Result<u64, WarrenError> {
    let bad = || {
        WarrenError::invalid(format!(
            "after must be seconds or a duration such as 90s, 15m, 1h30m or 2d, got '{}'",
            raw.chars().take(32).collect::<String>()
        ))
    };
    let s = raw.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| bad());
    }
    let (mut total, mut digits) = (0u64, String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

fn new_id() -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    format!("tmr_{}", hex::encode(bytes))
}

impl Sandboxes {
    /// Sets a timer on `id` that sends `event` at `when`.
    pub async fn create_timer(
        &self,
        id: &SandboxId,
        when: When,
        event: SentEvent,
        by: &KeyId,
        actor: &AuditActor,
    ) -> Result<TimerRecord, WarrenError> {
        let now = self.clock.now();
        let fires_at = match when {
            When::At(at) => at,
            When::After(s) => {
                let s = i64::try_from(s)
                    .unwrap_or(i64::MAX)
                    .min(MAX_AHEAD.whole_seconds() + 1);
                now + time::Duration::seconds(s)
            }
        };
        if fires_at < now {
            return Err(WarrenError::invalid("at is in the past"));
        }
        if fires_at > now + MAX_AHEAD {
            return Err(WarrenError::invalid(
                "a timer is set at most 365 days ahead",
            ));
        }
        if event.dedupe_key.is_some() {
            return Err(WarrenError::invalid(
                "a timer's event has no dedupe_key: it is sent once, keyed by the timer",
            ));
        }
        let data = validate(&event)?;
        self.get(id).await?;
        let timer = TimerRecord {
            id: new_id(),
            sandbox: id.clone(),
            fires_at,
            kind: event.kind,
            source: event.source,
            data,
            created_by: by.clone(),
            created_at: now,
        };
        self.store
            .insert_timer(timer.clone(), MAX_PENDING_TIMERS)
            .await?;
        let audit = Event::sandbox(Action::TimerCreate, id, warren_audit::Outcome::Ok)
            .with("timer", timer.id.as_str())
            .with("type", timer.kind.as_str())
            .with("fires_at", warren_core::rfc3339(timer.fires_at));
        self.audit.record_done(actor, audit).await;
        let stored = self.store.list_timers(id).await?;
        Ok(stored
            .into_iter()
            .find(|t| t.id == timer.id)
            .unwrap_or(timer))
    }

    /// `id`'s pending timers, soonest first.
    pub async fn list_timers(&self, id: &SandboxId) -> Result<Vec<TimerRecord>, WarrenError> {
        self.get(id).await?;
        Ok(self.store.list_timers(id).await?)
    }

    /// Deletes `id`'s pending timer `timer`.
    pub async fn delete_timer(
        &self,
        id: &SandboxId,
        timer: &str,
        actor: &AuditActor,
    ) -> Result<(), WarrenError> {
        self.get(id).await?;
        self.store
            .delete_timer(id, timer)
            .await
            .map_err(|e| match WarrenError::from(e) {
                e if e.kind == ErrorKind::NotFound => WarrenError::not_found(format!(
                    "timer '{}' not found on sandbox {id}",
                    timer.chars().take(64).collect::<String>()
                )),
                e => e,
            })?;
        let audit =
            Event::sandbox(Action::TimerDelete, id, warren_audit::Outcome::Ok).with("timer", timer);
        self.audit.record_done(actor, audit).await;
        Ok(())
    }

    /// Sends one due timer's event, then deletes it; `false` if it is to
    /// be tried again.
    async fn fire(&self, timer: &TimerRecord) -> bool {
        let team = match self.store.get_sandbox(&timer.sandbox).await {
            Ok(Some(rec)) => rec.team.to_string(),
            Ok(None) => String::from(crate::audit::SYSTEM_TEAM),
            Err(e) => {
                tracing::warn!(timer = %timer.id, error = %e, "timer not fired");
                return false;
            }
        };
        let actor = AuditActor {
            team,
            chain: vec![format!("timer:{}", timer.id)],
        };
        let sent = SentEvent {
            kind: timer.kind.clone(),
            source: timer.source.clone(),
            data: serde_json::from_str(&timer.data).unwrap_or(serde_json::Value::Null),
            dedupe_key: Some(format!("timer:{}", timer.id)),
        };
        match self.send_event(&timer.sandbox, sent, &actor).await {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind,
                    ErrorKind::NotFound
                        | ErrorKind::FailedPrecondition
                        | ErrorKind::InvalidArgument
                ) =>
            {
                tracing::info!(timer = %timer.id, sandbox = %timer.sandbox, reason = %e, "timer dropped");
            }
            Err(e) => {
                tracing::warn!(timer = %timer.id, error = %e, "timer not fired; trying again");
                return false;
            }
        }
        match self.store.delete_timer(&timer.sandbox, &timer.id).await {
            Ok(()) | Err(warren_store::StoreError::NotFound(_)) => true,
            Err(e) => {
                tracing::warn!(timer = %timer.id, error = %e, "fired timer not deleted");
                false
            }
        }
    }

    /// Fires due timers until `shutdown` fires.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let due = match self.store.due_timers(self.clock.now(), BATCH).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list due timers");
                    continue;
                }
            };
            for timer in &due {
                self.fire(timer).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds() {
        for (raw, s) in [
            ("90", 90),
            ("90s", 90),
            ("15m", 900),
            ("1h30m", 5400),
            ("2d", 172_800),
        ] {
            assert_eq!(parse_after(raw).unwrap(), s, "{raw}");
        }
        for bad in ["", "h", "1x", "1h30", "-5", "1.5h", "99999999999999999999d"] {
            assert!(parse_after(bad).is_err(), "{bad}");
        }
    }
}
