//! How a sandbox takes the events sent to its inbox: which of them wake it
//! when it is paused, and the command, if any, that Warren runs inside it
//! for each one.
//!
//! Wake patterns are event types, or a prefix ending in `*` (`github.*`);
//! `*` alone matches every type. The default wakes on every event; an
//! empty list never wakes (events wait for the next resume).

use serde::{Deserialize, Serialize};

use crate::WarrenError;

/// Most patterns one wake policy lists.
pub const MAX_WAKE_PATTERNS: usize = 32;
/// Most arguments a handler command has.
pub const MAX_HANDLER_ARGS: usize = 64;
/// Longest argument of a handler command, in bytes.
pub const MAX_HANDLER_ARG: usize = 4096;

/// Which events resume a paused sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WakePolicy {
    /// Event type patterns; default `["*"]`.
    pub on: Vec<String>,
}

impl Default for WakePolicy {
    fn default() -> Self {
        Self {
            on: vec!["*".to_owned()],
        }
    }
}

impl WakePolicy {
    pub fn validate(&self) -> Result<(), WarrenError> {
        if self.on.len() > MAX_WAKE_PATTERNS {
            return Err(WarrenError::invalid(format!(
                "wake.on lists at most {MAX_WAKE_PATTERNS} patterns"
            )));
        }
        for pattern in &self.on {
            let body = pattern.strip_suffix('*').unwrap_or(pattern);
            let ok = pattern.len() <= 129
                && !pattern.is_empty()
                && body
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._:/-".contains(c));
            if !ok {
                return Err(WarrenError::invalid(format!(
                    "wake pattern {pattern:?} must be an event type, optionally ending in * (e.g. github.*)"
                )));
            }
        }
        Ok(())
    }

    /// Whether an event of type `kind` wakes the sandbox.
    pub fn wakes_on(&self, kind: &str) -> bool {
        self.on.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => kind.starts_with(prefix),
            None => p == kind,
        })
    }
}

/// A command Warren runs inside the sandbox for each event, in order: the
/// event's JSON on its standard input; exit status 0 acknowledges the
/// event, anything else runs it again after a backoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventHandler {
    pub cmd: Vec<String>,
}

impl EventHandler {
    pub fn validate(&self) -> Result<(), WarrenError> {
        let args_ok = !self.cmd.is_empty()
            && self.cmd.len() <= MAX_HANDLER_ARGS
            && self
                .cmd
                .iter()
                .all(|a| a.len() <= MAX_HANDLER_ARG && !a.contains('\0'));
        if !args_ok || self.cmd[0].is_empty() {
            return Err(WarrenError::invalid(format!(
                "on_event.cmd must be 1-{MAX_HANDLER_ARGS} arguments of at most {MAX_HANDLER_ARG} bytes without NUL, the first naming a program"
            )));
        }
        Ok(())
    }
}

/// A sandbox's inbox settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxSettings {
    pub wake: WakePolicy,
    pub handler: Option<EventHandler>,
}

impl InboxSettings {
    pub fn validate(&self) -> Result<(), WarrenError> {
        self.wake.validate()?;
        self.handler.as_ref().map_or(Ok(()), EventHandler::validate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(on: &[&str]) -> WakePolicy {
        WakePolicy {
            on: on.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn patterns_match_exact_types_and_prefixes() {
        assert!(WakePolicy::default().wakes_on("anything.at.all"));
        let p = policy(&["github.*", "ci.finished"]);
        assert!(p.wakes_on("github.check_suite"));
        assert!(p.wakes_on("ci.finished"));
        assert!(!p.wakes_on("ci.finished.late"));
        assert!(!p.wakes_on("reminder"));
        assert!(!policy(&[]).wakes_on("ci.finished"));
    }

    #[test]
    fn bad_patterns_and_handlers_are_refused() {
        assert!(policy(&["gith*ub"]).validate().is_err());
        assert!(policy(&[""]).validate().is_err());
        assert!(policy(&["a b"]).validate().is_err());
        assert!(policy(&["github.*", "*"]).validate().is_ok());
        let empty = EventHandler { cmd: vec![] };
        assert!(empty.validate().is_err());
        let nul = EventHandler {
            cmd: vec!["sh".into(), "a\0b".into()],
        };
        assert!(nul.validate().is_err());
        let ok = EventHandler {
            cmd: vec!["python3".into(), "/app/on_event.py".into()],
        };
        assert!(ok.validate().is_ok());
    }
}
