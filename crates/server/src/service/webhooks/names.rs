//! Lifecycle event names: Warren's, the audit actions they come from, and
//! E2B's names for the ones E2B has.

use warren_audit::Outcome;
use warren_core::WarrenError;

use crate::audit::Action;

/// Every event a registration may name (besides `*`).
pub const KNOWN: [&str; 11] = [
    "sandbox.created",
    "sandbox.paused",
    "sandbox.resumed",
    "sandbox.killed",
    "sandbox.failed",
    "sandbox.forked",
    "snapshot.created",
    "event.delivered",
    "budget.warning",
    "budget.exceeded",
    "rule.fired",
];

/// Most event names one registration lists.
pub const MAX_EVENTS: usize = 16;

/// The event an audited lifecycle act is, if any: successful creates,
/// pauses, resumes, kills (by request or expiry), forks and named
/// snapshots, and every failure of a sandbox.
pub fn for_action(action: Action, outcome: Outcome) -> Option<&'static str> {
    if action == Action::SandboxFail {
        return Some("sandbox.failed");
    }
    if outcome != Outcome::Ok {
        return None;
    }
    Some(match action {
        Action::SandboxCreate => "sandbox.created",
        Action::SandboxPause => "sandbox.paused",
        Action::SandboxResume => "sandbox.resumed",
        Action::SandboxKill | Action::SandboxExpire => "sandbox.killed",
        Action::SandboxFork => "sandbox.forked",
        Action::SnapshotCreate => "snapshot.created",
        Action::EventAck => "event.delivered",
        Action::RuleFire => "rule.fired",
        _ => return None,
    })
}

/// The names checked: known or `*`, at least one, at most
/// [`MAX_EVENTS`], without repeats (in the order given).
pub fn validate(events: &[String]) -> Result<Vec<String>, WarrenError> {
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(WarrenError::invalid(format!(
            "events must list 1-{MAX_EVENTS} event names or '*'"
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if e != "*" && !KNOWN.contains(&e.as_str()) {
            return Err(WarrenError::invalid(format!(
                "unknown event '{}'; known: *, {}",
                e.chars().take(64).collect::<String>(),
                KNOWN.join(", ")
            )));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

/// E2B's name for a Warren event, for the ones E2B has.
pub fn to_e2b(name: &str) -> Option<&'static str> {
    Some(match name {
        "sandbox.created" => "sandbox.lifecycle.created",
        "sandbox.killed" => "sandbox.lifecycle.killed",
        "sandbox.paused" => "sandbox.lifecycle.paused",
        "sandbox.resumed" => "sandbox.lifecycle.resumed",
        "snapshot.created" => "sandbox.lifecycle.checkpointed",
        _ => return None,
    })
}

/// E2B's event names that Warren never sends (accepted, ignored).
const E2B_UNSENT: [&str; 1] = ["sandbox.lifecycle.updated"];

/// Warren's names for E2B's; an empty list means every event E2B has.
pub fn from_e2b(events: &[String]) -> Result<Vec<String>, WarrenError> {
    let all = || KNOWN.iter().filter(|n| to_e2b(n).is_some());
    if events.is_empty() {
        return Ok(all().map(|n| (*n).to_owned()).collect());
    }
    let mut out: Vec<String> = Vec::new();
    for e in events.iter().take(MAX_EVENTS) {
        if E2B_UNSENT.contains(&e.as_str()) {
            continue;
        }
        let name = all()
            .find(|n| to_e2b(n) == Some(e.as_str()))
            .ok_or_else(|| {
                WarrenError::invalid(format!(
                    "unknown event '{}'",
                    e.chars().take(64).collect::<String>()
                ))
            })?;
        if !out.iter().any(|o| o == name) {
            out.push((*name).to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_acts_map_to_events_and_failures_only_to_failed() {
        assert_eq!(
            for_action(Action::SandboxExpire, Outcome::Ok),
            Some("sandbox.killed")
        );
        assert_eq!(
            for_action(Action::SandboxFail, Outcome::Error),
            Some("sandbox.failed")
        );
        assert_eq!(for_action(Action::SandboxPause, Outcome::Error), None);
        assert_eq!(for_action(Action::ProcessExec, Outcome::Ok), None);
        for a in Action::ALL {
            if let Some(name) = for_action(a, Outcome::Ok) {
                assert!(KNOWN.contains(&name), "{name}");
            }
        }
    }

    #[test]
    fn names_are_validated_and_mapped_both_ways() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            validate(&v(&["sandbox.paused", "sandbox.paused", "*"])).unwrap(),
            v(&["sandbox.paused", "*"])
        );
        assert!(validate(&v(&["sandbox.exploded"])).is_err());
        assert!(validate(&[]).is_err());
        assert_eq!(
            from_e2b(&v(&[
                "sandbox.lifecycle.killed",
                "sandbox.lifecycle.updated"
            ]))
            .unwrap(),
            v(&["sandbox.killed"])
        );
        assert_eq!(from_e2b(&[]).unwrap().len(), 5);
        assert!(from_e2b(&v(&["sandbox.killed"])).is_err());
        for n in from_e2b(&[]).unwrap() {
            assert!(to_e2b(&n).is_some());
        }
    }
}
