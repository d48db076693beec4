//! A process's events to its subscribers, with the recent output kept for
//! a subscriber that comes back.
//!
//! A checkpoint (snapshot, fork) resets the sandbox's connections while
//! its commands run on, so a caller following a command loses the output
//! that was in flight and whatever the command wrote until it re-attaches.
//! The fan-out therefore numbers the `data` events of a process (0, 1, …)
//! and keeps the newest of them, at most [`HISTORY_BYTES`] of output and
//! [`HISTORY_EVENTS`] events, with the `end` once there is one. A caller
//! that counted the data events it received re-attaches asking for the
//! events from that number on (`process.Process/Connect` with Warren's
//! `replayFrom`) and gets them, then the live ones, in order and without a
//! gap or a repeat: the replay and the registration happen under one lock,
//! and a `data` event is numbered, kept and handed to the subscribers
//! under that same lock. Events older than what is kept are reported as
//! lost (their number), never made up.

use std::collections::VecDeque;

use tokio::sync::mpsc;
use warren_envd::process::{DataEvent, EndEvent, ProcessEvent};

/// Output kept per process for a re-attach.
pub const HISTORY_BYTES: usize = 1024 * 1024;
/// Events kept per process for a re-attach.
pub const HISTORY_EVENTS: usize = 4096;
/// Room of a subscriber's queue beyond its replay: a slow client slows the
/// process down instead of growing memory.
const SUBSCRIBER_QUEUE: usize = 256;

/// Subscribers and the kept events of one process.
#[derive(Default)]
pub struct Fanout {
    subscribers: Vec<mpsc::Sender<ProcessEvent>>,
    kept: VecDeque<DataEvent>,
    kept_bytes: usize,
    /// Number of the oldest kept data event.
    first: u64,
    end: Option<EndEvent>,
}

/// A new subscriber's queue and how many events before its start point
/// are no longer kept.
pub struct Subscription {
    pub events: mpsc::Receiver<ProcessEvent>,
    pub lost: u64,
}

fn size(event: &DataEvent) -> usize {
    match event {
        DataEvent::Stdout(b) | DataEvent::Stderr(b) | DataEvent::Pty(b) => b.len(),
    }
}

impl Fanout {
    /// Keeps `event` (a data event or the end) and returns the subscribers
    /// to hand it to.
    pub fn publish(&mut self, event: &ProcessEvent) -> Vec<mpsc::Sender<ProcessEvent>> {
        match event {
            ProcessEvent::Data(data) => {
                self.kept_bytes += size(data);
                self.kept.push_back(data.clone());
                while self.kept.len() > HISTORY_EVENTS
                    || (self.kept_bytes > HISTORY_BYTES && self.kept.len() > 1)
                {
                    if let Some(old) = self.kept.pop_front() {
                        self.kept_bytes -= size(&old);
                        self.first += 1;
                    }
                }
            }
            ProcessEvent::End(end) => self.end = Some(end.clone()),
            _ => {}
        }
        self.subscribers.clone()
    }

    /// Adds a subscriber. With `replay_from`, its queue first holds the
    /// kept data events from that number on (and the end, if the process
    /// ended: then it is not registered, its queue just closes); without,
    /// it gets the events from now on.
    pub fn subscribe(&mut self, replay_from: Option<u64>) -> Subscription {
        let next = self.first + self.kept.len() as u64;
        let from = replay_from.unwrap_or(next).min(next);
        let lost = self.first.saturating_sub(from);
        let skip = usize::try_from(from.saturating_sub(self.first)).unwrap_or(usize::MAX);
        let replay: Vec<ProcessEvent> = self
            .kept
            .iter()
            .skip(skip)
            .cloned()
            .map(ProcessEvent::Data)
            .chain(
                self.end
                    .clone()
                    .filter(|_| replay_from.is_some())
                    .map(ProcessEvent::End),
            )
            .collect();
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE + replay.len());
        for event in replay {
            // The queue was made with room for the whole replay.
            let _ = tx.try_send(event);
        }
        if self.end.is_none() {
            self.subscribers.push(tx);
        }
        Subscription { events: rx, lost }
    }

    /// Drops subscribers whose receiver is gone.
    pub fn forget(&mut self, gone: &[mpsc::Sender<ProcessEvent>]) {
        self.subscribers
            .retain(|s| !gone.iter().any(|g| g.same_channel(s)));
    }

    /// Closes every subscriber's queue (after the end was handed out).
    pub fn close(&mut self) {
        self.subscribers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(s: &str) -> ProcessEvent {
        ProcessEvent::Data(DataEvent::Stdout(s.as_bytes().to_vec()))
    }

    fn drain(rx: &mut mpsc::Receiver<ProcessEvent>) -> Vec<ProcessEvent> {
        let mut all = Vec::new();
        while let Ok(e) = rx.try_recv() {
            all.push(e);
        }
        all
    }

    fn deliver(f: &mut Fanout, event: ProcessEvent) {
        for tx in f.publish(&event) {
            let _ = tx.try_send(event.clone());
        }
    }

    #[test]
    fn a_returning_subscriber_gets_what_it_missed_then_the_live_events() {
        let mut f = Fanout::default();
        let mut first = f.subscribe(None);
        for s in ["a", "b", "c"] {
            deliver(&mut f, out(s));
        }
        // The caller received "a" only before its connection broke.
        assert_eq!(drain(&mut first.events).len(), 3);
        drop(first);
        let mut again = f.subscribe(Some(1));
        assert_eq!(again.lost, 0);
        deliver(&mut f, out("d"));
        assert_eq!(drain(&mut again.events), vec![out("b"), out("c"), out("d")]);
    }

    #[test]
    fn a_process_that_ended_meanwhile_replays_its_rest_and_its_end() {
        let mut f = Fanout::default();
        deliver(&mut f, out("a"));
        deliver(&mut f, out("b"));
        let end = EndEvent {
            exit_code: 3,
            exited: true,
            status: "exit status 3".into(),
            error: None,
        };
        deliver(&mut f, ProcessEvent::End(end.clone()));
        f.close();
        let mut again = f.subscribe(Some(1));
        assert_eq!(
            drain(&mut again.events),
            vec![out("b"), ProcessEvent::End(end)]
        );
        // The queue is closed: the stream ends after the end event.
        assert!(again.events.try_recv().is_err());
        assert!(f.subscribers.is_empty());
    }

    #[test]
    fn output_beyond_what_is_kept_is_reported_lost() {
        let mut f = Fanout::default();
        let chunk = "x".repeat(HISTORY_BYTES / 4);
        for _ in 0..10 {
            deliver(&mut f, out(&chunk));
        }
        let again = f.subscribe(Some(0));
        assert_eq!(again.lost, 6);
        assert!(f.kept_bytes <= HISTORY_BYTES);
        // Asking past the newest event replays nothing and loses nothing.
        let ahead = f.subscribe(Some(99));
        assert_eq!(ahead.lost, 0);
    }

    #[test]
    fn a_new_subscriber_without_replay_gets_only_later_events() {
        let mut f = Fanout::default();
        deliver(&mut f, out("old"));
        let mut sub = f.subscribe(None);
        deliver(&mut f, out("new"));
        assert_eq!(drain(&mut sub.events), vec![out("new")]);
    }
}
