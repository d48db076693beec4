//! The create gate: how many sandboxes start at once, and how many creates
//! wait for their turn. A burst of creates larger than the host can start
//! together queues here instead of piling onto the runtime, and what does
//! not fit the queue is refused at once.
//!
//! Invariants:
//! - At most `max_in_flight` turns are held at once (creates, creates from
//!   snapshots and forks that start sandboxes; a warm pool's claim and a
//!   resume take none).
//! - At most `max_waiting` callers wait; a caller beyond that, or one
//!   whose expected wait (the queue ahead of it, in waves of
//!   `max_in_flight`, at the mean start time) exceeds [`MAX_WAIT`], is
//!   refused without waiting: `503 unavailable` with a retry hint.
//! - No caller waits longer than [`MAX_WAIT`]: one whose turn has not come
//!   by then is refused the same way. A caller that goes away while
//!   waiting leaves the queue (its future is dropped).
//! - Turns are handed out in arrival order (tokio's semaphore is fair).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warren_core::{ErrorKind, WarrenError};

/// Longest a create waits for its turn.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Callers that may wait for a turn by default.
pub const DEFAULT_QUEUE: usize = 32;
/// The start time assumed before any create has finished.
const FIRST_GUESS_MS: u64 = 1000;
/// Longest retry hint given.
const MAX_RETRY_AFTER_S: u64 = 60;

/// Sandboxes starting at once by default: twice the host's CPUs (a start
/// waits on the disk and the agent as much as it computes), at least 2.
pub fn default_in_flight() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// The gate itself; clones share it.
#[derive(Debug, Clone)]
pub struct CreateGate {
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    max_waiting: usize,
    waiting: Arc<AtomicUsize>,
    /// Moving mean of how long a turn is held, in ms.
    mean_ms: Arc<AtomicU64>,
    /// Callers refused so far.
    refused: Arc<AtomicU64>,
    /// [`MAX_WAIT`], shorter in tests.
    max_wait: Duration,
}

/// A held turn; dropping it lets the next caller in.
#[derive(Debug)]
pub struct Turn {
    _permit: OwnedSemaphorePermit,
    since: Instant,
    mean_ms: Arc<AtomicU64>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let took = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        // A mean over the last few starts (weight 1/8 for the newest); a
        // lost race between two updates loses one sample, no more.
        let old = self.mean_ms.load(Ordering::Relaxed);
        let new = old.saturating_mul(7).saturating_add(took) / 8;
        self.mean_ms.store(new.max(1), Ordering::Relaxed);
    }
}

/// Leaves the queue when the waiting caller gets its turn, is refused or
/// goes away.
struct InQueue(Arc<AtomicUsize>);

impl Drop for InQueue {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the gate holds now, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateLoad {
    pub in_flight: usize,
    pub waiting: usize,
    pub refused: u64,
}

impl CreateGate {
    /// `max_in_flight` is at least 1.
    pub fn new(max_in_flight: usize, max_waiting: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            max_waiting,
            waiting: Arc::new(AtomicUsize::new(0)),
            mean_ms: Arc::new(AtomicU64::new(FIRST_GUESS_MS)),
            refused: Arc::new(AtomicU64::new(0)),
            max_wait: MAX_WAIT,
        }
    }

    /// A turn to start a sandbox: at once when one is free, after a wait
    /// in the queue otherwise, or `503 unavailable` with a retry hint.
    pub async fn enter(&self) -> Result<Turn, WarrenError> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(self.turn(permit));
        }
        let ahead = self.waiting.fetch_add(1, Ordering::AcqRel);
        let queued = InQueue(self.waiting.clone());
        if ahead >= self.max_waiting || self.expected_wait(ahead) > self.max_wait {
            return Err(self.refuse(ahead));
        }
        match tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => {
                drop(queued);
                Ok(self.turn(permit))
            }
            // The semaphore is never closed; a timeout is the other case.
            _ => Err(self.refuse(self.waiting.load(Ordering::Acquire))),
        }
    }

    /// Turns held and callers waiting now.
    pub fn load(&self) -> GateLoad {
        GateLoad {
            in_flight: self.max_in_flight - self.permits.available_permits(),
            waiting: self.waiting.load(Ordering::Acquire),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn turn(&self, permit: OwnedSemaphorePermit) -> Turn {
        Turn {
            _permit: permit,
            since: Instant::now(),
            mean_ms: self.mean_ms.clone(),
        }
    }

    /// How long a caller with `ahead` callers before it in the queue
    /// waits: the waves of starts before its own, at the mean start time.
    fn expected_wait(&self, ahead: usize) -> Duration {
        let waves = (ahead / self.max_in_flight + 1) as u64;
        Duration::from_millis(waves.saturating_mul(self.mean_ms.load(Ordering::Relaxed)))
    }

    fn refuse(&self, ahead: usize) -> WarrenError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let retry = self
            .expected_wait(ahead)
            .as_secs()
            .clamp(1, MAX_RETRY_AFTER_S);
        WarrenError::new(
            ErrorKind::Unavailable,
            format!(
                "the host is busy creating sandboxes ({} being created, {} waiting)",
                self.max_in_flight, ahead
            ),
        )
        .retry_after(u32::try_from(retry).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn callers_beyond_the_turns_and_the_queue_are_refused_at_once() {
        let gate = CreateGate::new(1, 1);
        let first = gate.enter().await.unwrap();
        // The second waits for the first's turn.
        let second = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(|_| ()) }
        });
        while gate.load().waiting == 0 {
            tokio::task::yield_now().await;
        }
        // The third finds the queue full and is refused while the first
        // still holds its turn.
        let err = gate.enter().await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert!(err.retry_after_s.is_some_and(|s| s >= 1), "{err:?}");
        assert!(err.message.contains("busy"), "{}", err.message);
        assert_eq!(
            gate.load(),
            GateLoad {
                in_flight: 1,
                waiting: 1,
                refused: 1
            }
        );
        drop(first);
        second.await.unwrap().unwrap();
        assert_eq!(gate.load().in_flight, 0);
        assert_eq!(gate.load().waiting, 0);
    }

    #[tokio::test]
    async fn a_queue_too_slow_to_drain_in_time_refuses_instead_of_waiting() {
        let gate = CreateGate::new(1, 100);
        // Starts that take a minute each: nobody may queue behind one.
        gate.mean_ms.store(60_000, Ordering::Relaxed);
        let _first = gate.enter().await.unwrap();
        let err = gate.enter().await.unwrap_err();
        assert_eq!(err.retry_after_s, Some(60));
        assert_eq!(gate.load().waiting, 0);
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_leaves_the_queue() {
        let gate = CreateGate::new(1, 1);
        let first = gate.enter().await.unwrap();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(|_| ()) }
        });
        while gate.load().waiting == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(gate.load().waiting, 0);
        drop(first);
        // Its place was freed: a new caller gets a turn.
        let _turn = gate.enter().await.unwrap();
    }

    #[tokio::test]
    async fn nobody_waits_longer_than_the_bound() {
        let mut gate = CreateGate::new(1, 10);
        gate.max_wait = Duration::from_millis(50);
        gate.mean_ms.store(1, Ordering::Relaxed);
        let _held = gate.enter().await.unwrap();
        let err = gate.enter().await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert_eq!(gate.load().waiting, 0);
    }

    #[test]
    fn the_expected_wait_counts_waves_of_starts() {
        let gate = CreateGate::new(2, 0);
        assert_eq!(gate.expected_wait(0), Duration::from_millis(FIRST_GUESS_MS));
        assert_eq!(
            gate.expected_wait(3),
            Duration::from_millis(2 * FIRST_GUESS_MS)
        );
    }
}
