//! What a sandbox does across gaps in its use: how long it may run, whether
//! an idle sandbox is paused or killed, how long a paused one is kept, and
//! whether a call on a paused sandbox resumes it. Validated once at the edge
//! with [`Persistence::validate`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::WarrenError;

/// What happens to a sandbox that had no API activity for its idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnIdle {
    /// Killed: its state is gone.
    Kill,
    /// Paused: checkpointed to the snapshot store, resumable.
    Pause,
    /// Paused keeping only its filesystem ([`PauseMode::Filesystem`]).
    PauseFilesystem,
}

impl OnIdle {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Pause => "pause",
            Self::PauseFilesystem => "pause_filesystem",
        }
    }

    /// How the sandbox is paused, or `None` when it is killed.
    pub fn pause_mode(self) -> Option<PauseMode> {
        match self {
            Self::Kill => None,
            Self::Pause => Some(PauseMode::Full),
            Self::PauseFilesystem => Some(PauseMode::Filesystem),
        }
    }
}

impl fmt::Display for OnIdle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OnIdle {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kill" => Ok(Self::Kill),
            "pause" => Ok(Self::Pause),
            "pause_filesystem" => Ok(Self::PauseFilesystem),
            other => Err(WarrenError::invalid(format!(
                "on_idle must be 'kill', 'pause' or 'pause_filesystem', got '{}'",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// What a pause keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseMode {
    /// Memory, processes and files: a resume goes on where it stopped.
    #[default]
    Full,
    /// Files only: every process is ended first, and a resume boots the
    /// sandbox again from its files (its template's start command runs
    /// again, as at create).
    Filesystem,
}

impl PauseMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Filesystem => "filesystem",
        }
    }
}

impl fmt::Display for PauseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PauseMode {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Self::Full),
            "filesystem" => Ok(Self::Filesystem),
            other => Err(WarrenError::invalid(format!(
                "pause mode must be 'full' or 'filesystem', got '{}'",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// Lifetimes and pause behaviour of one sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persistence {
    /// Seconds a running sandbox lives unless extended; counted again from
    /// every resume (a paused sandbox does not age by it).
    pub timeout_s: u64,
    /// Seconds without API activity after which `on_idle` applies; `None`
    /// means only `timeout_s` counts.
    pub idle_timeout_s: Option<u64>,
    pub on_idle: OnIdle,
    /// Seconds a paused sandbox is kept; then it and its snapshots are
    /// deleted.
    pub paused_ttl_s: u64,
    /// Whether an exec or files call on a paused sandbox resumes it first.
    pub auto_resume: bool,
}

impl Persistence {
    /// Longest running lifetime (and idle timeout), in seconds.
    pub const MAX_TIMEOUT_S: u64 = 24 * 3600;
    /// Running lifetime when none is asked for.
    pub const DEFAULT_TIMEOUT_S: u64 = 300;
    /// Longest a paused sandbox may be kept: 30 days.
    pub const MAX_PAUSED_TTL_S: u64 = 30 * 24 * 3600;
    /// How long a paused sandbox is kept when nobody says: 7 days.
    pub const DEFAULT_PAUSED_TTL_S: u64 = 7 * 24 * 3600;

    pub fn validate(&self) -> Result<(), WarrenError> {
        bounded("timeout_s", self.timeout_s, Self::MAX_TIMEOUT_S)?;
        if let Some(idle) = self.idle_timeout_s {
            bounded("idle_timeout_s", idle, Self::MAX_TIMEOUT_S)?;
        }
        bounded("paused_ttl_s", self.paused_ttl_s, Self::MAX_PAUSED_TTL_S)
    }
}

impl Default for Persistence {
    fn default() -> Self {
        Self {
            timeout_s: Self::DEFAULT_TIMEOUT_S,
            idle_timeout_s: None,
            on_idle: OnIdle::Kill,
            paused_ttl_s: Self::DEFAULT_PAUSED_TTL_S,
            auto_resume: true,
        }
    }
}

fn bounded(field: &str, value: u64, max: u64) -> Result<(), WarrenError> {
    if value == 0 || value > max {
        return Err(WarrenError::invalid(format!(
            "{field} must be between 1 and {max}, got {value}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_field() {
        assert!(Persistence::default().validate().is_ok());
        let cases = [
            (
                Persistence {
                    timeout_s: 0,
                    ..Persistence::default()
                },
                "timeout_s",
            ),
            (
                Persistence {
                    idle_timeout_s: Some(Persistence::MAX_TIMEOUT_S + 1),
                    ..Persistence::default()
                },
                "idle_timeout_s",
            ),
            (
                Persistence {
                    paused_ttl_s: 0,
                    ..Persistence::default()
                },
                "paused_ttl_s",
            ),
        ];
        for (p, field) in cases {
            let err = p.validate().unwrap_err();
            assert!(err.message.starts_with(field), "{}", err.message);
        }
    }

    #[test]
    fn on_idle_round_trips() {
        for o in [OnIdle::Kill, OnIdle::Pause, OnIdle::PauseFilesystem] {
            assert_eq!(o.as_str().parse::<OnIdle>().unwrap(), o);
        }
        assert!("sleep".parse::<OnIdle>().is_err());
        for m in [PauseMode::Full, PauseMode::Filesystem] {
            assert_eq!(m.as_str().parse::<PauseMode>().unwrap(), m);
        }
        assert!("memory".parse::<PauseMode>().is_err());
    }
}
