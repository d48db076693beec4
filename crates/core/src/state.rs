//! The sandbox lifecycle: `creating → running ⇄ paused → killed`, with the
//! in-between states `pausing` and `resuming` and the sink `failed`.
//!
//! A rollback (restoring a named snapshot into the same sandbox) goes
//! through `resuming` too, from `running` or `paused`: while it runs the
//! sandbox has no usable instance, exactly as during a resume. Forks and
//! sandboxes created from a snapshot are new sandboxes: they start in
//! `creating` like any other.
//!
//! Every state change in Warren goes through [`SandboxState::apply`]; a
//! transition it does not list is rejected with `FailedPrecondition`, so no
//! caller needs its own checks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::WarrenError;

/// Where a sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxState {
    Creating,
    Running,
    Pausing,
    Paused,
    Resuming,
    Killed,
    Failed,
}

/// What happened to a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The runtime started it and the agent answered.
    Started,
    /// A pause (checkpoint to disk) begins.
    BeginPause,
    /// The checkpoint is complete and durable.
    Paused,
    /// A resume (restore from disk) begins.
    BeginResume,
    /// The restore finished and the agent answered.
    Resumed,
    /// A rollback (restore of a named snapshot in place) begins.
    BeginRollback,
    /// It was killed on request, by its timeout or by reconciliation.
    Kill,
    /// Something broke that cannot be retried.
    Fail,
}

impl SandboxState {
    /// The state after `t`, or an error that names both.
    pub fn apply(self, t: Transition) -> Result<SandboxState, WarrenError> {
        use SandboxState as S;
        use Transition as T;
        let next = match (self, t) {
            (S::Creating, T::Started) => S::Running,
            (S::Running, T::BeginPause) => S::Pausing,
            (S::Pausing, T::Paused) => S::Paused,
            // A failed checkpoint leaves the sandbox running.
            (S::Pausing, T::Started) => S::Running,
            (S::Paused, T::BeginResume) => S::Resuming,
            (S::Resuming, T::Resumed) => S::Running,
            (S::Running, T::BeginRollback) | (S::Paused, T::BeginRollback) => S::Resuming,
            // A failed restore leaves the snapshot in place.
            (S::Resuming, T::Paused) => S::Paused,
            (S::Killed, T::Kill) | (S::Failed, T::Kill) => S::Killed,
            (s, T::Kill) if !s.is_terminal() => S::Killed,
            (s, T::Fail) if !s.is_terminal() => S::Failed,
            (s, t) => {
                return Err(WarrenError::precondition(format!(
                    "sandbox is {s}: cannot {}",
                    t.verb()
                )));
            }
        };
        Ok(next)
    }

    /// Killed and failed sandboxes never change again (except failed → killed).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Killed | Self::Failed)
    }

    /// Whether the sandbox holds compute (a live runtime instance).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Running | Self::Pausing)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Running => "running",
            Self::Pausing => "pausing",
            Self::Paused => "paused",
            Self::Resuming => "resuming",
            Self::Killed => "killed",
            Self::Failed => "failed",
        }
    }

    pub const ALL: [SandboxState; 7] = [
        Self::Creating,
        Self::Running,
        Self::Pausing,
        Self::Paused,
        Self::Resuming,
        Self::Killed,
        Self::Failed,
    ];
}

impl Transition {
    fn verb(self) -> &'static str {
        match self {
            Self::Started => "start",
            Self::BeginPause => "pause",
            Self::Paused => "finish pausing",
            Self::BeginResume => "resume",
            Self::Resumed => "finish resuming",
            Self::BeginRollback => "roll back",
            Self::Kill => "kill",
            Self::Fail => "fail",
        }
    }
}

impl fmt::Display for SandboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SandboxState {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                WarrenError::invalid(format!(
                    "unknown sandbox state '{s}' (expected one of: creating, running, pausing, paused, resuming, killed, failed)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::{SandboxState as S, Transition as T};

    #[test]
    fn happy_path() {
        let s = S::Creating.apply(T::Started).unwrap();
        let s = s.apply(T::BeginPause).unwrap().apply(T::Paused).unwrap();
        let s = s.apply(T::BeginResume).unwrap().apply(T::Resumed).unwrap();
        assert_eq!(s, S::Running);
        assert_eq!(s.apply(T::Kill).unwrap(), S::Killed);
    }

    #[test]
    fn rollback_goes_through_resuming() {
        for from in [S::Running, S::Paused] {
            let s = from.apply(T::BeginRollback).unwrap();
            assert_eq!(s, S::Resuming);
            assert_eq!(s.apply(T::Resumed).unwrap(), S::Running);
        }
        for from in [S::Creating, S::Pausing, S::Resuming] {
            assert!(from.apply(T::BeginRollback).is_err(), "{from}");
        }
    }

    #[test]
    fn killed_is_final() {
        for t in [
            T::Started,
            T::BeginPause,
            T::BeginResume,
            T::BeginRollback,
            T::Fail,
        ] {
            assert!(S::Killed.apply(t).is_err(), "{t:?} after kill accepted");
        }
        assert_eq!(S::Killed.apply(T::Kill).unwrap(), S::Killed);
    }

    #[test]
    fn illegal_transitions_name_the_state() {
        let err = S::Paused.apply(T::BeginPause).unwrap_err();
        assert_eq!(err.message, "sandbox is paused: cannot pause");
        assert!(S::Creating.apply(T::BeginResume).is_err());
        assert!(S::Running.apply(T::Resumed).is_err());
    }

    #[test]
    fn states_round_trip_through_strings() {
        for s in S::ALL {
            assert_eq!(s.as_str().parse::<S>().unwrap(), s);
        }
        assert!("zombie".parse::<S>().is_err());
    }
}
