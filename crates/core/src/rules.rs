//! Anomaly rules: a condition on one sandbox's measurements that has held
//! for a while, and what to do then.
//!
//! After every meter sample each running sandbox's [`Reading`] is checked
//! against the rules in force for its team: a rule fires when its
//! measurement has been at or above its threshold in every sample for at
//! least `for_s` seconds (0: the first such sample), once, and may fire
//! again only after the measurement fell below the threshold. A team's
//! rule of a kind replaces the operator's rule of that kind, which
//! replaces the default ([`defaults`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::WarrenError;

/// Longest time a condition may be asked to hold.
pub const MAX_FOR_S: u64 = 7 * 24 * 3600;

/// What a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKind {
    /// CPU time over the last interval, as a share of its CPUs (0-1).
    Cpu,
    /// Memory in use as a share of its limit (0-1).
    Memory,
    /// Tasks as a share of its limit (0-1).
    Pids,
    /// What it cost over the last interval, per hour.
    SpendRate,
    /// Connections and DNS queries its egress policy refused over the last
    /// interval, per minute.
    EgressDenials,
    /// Seconds the oldest command started in it through the API (other
    /// than the template's start command) has been running.
    ProcessAge,
    /// Forks of it over the last interval, per minute.
    Forks,
}

impl RuleKind {
    pub const ALL: [RuleKind; 7] = [
        Self::Cpu,
        Self::Memory,
        Self::Pids,
        Self::SpendRate,
        Self::EgressDenials,
        Self::ProcessAge,
        Self::Forks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Pids => "pids",
            Self::SpendRate => "spend_rate",
            Self::EgressDenials => "egress_denials",
            Self::ProcessAge => "process_age",
            Self::Forks => "forks",
        }
    }

    /// Whether its threshold is a share (0-1) rather than an amount.
    fn is_share(self) -> bool {
        matches!(self, Self::Cpu | Self::Memory | Self::Pids)
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuleKind {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                WarrenError::invalid(format!(
                    "rule kind must be cpu, memory, pids, spend_rate, egress_denials, process_age or forks, not {s:?}"
                ))
            })
    }
}

/// What a rule does when it fires; every firing is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// The audit entry and the `rule.fired` webhook only.
    Notify,
    Pause,
    Kill,
}

impl fmt::Display for RuleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Notify => "notify",
            Self::Pause => "pause",
            Self::Kill => "kill",
        })
    }
}

impl FromStr for RuleAction {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "notify" => Ok(Self::Notify),
            "pause" => Ok(Self::Pause),
            "kill" => Ok(Self::Kill),
            other => Err(WarrenError::invalid(format!(
                "rule action must be notify, pause or kill, not {other:?}"
            ))),
        }
    }
}

/// One rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    pub threshold: f64,
    pub for_s: u64,
    pub action: RuleAction,
}

impl Rule {
    pub fn validate(&self) -> Result<(), WarrenError> {
        let ok = self.threshold.is_finite()
            && self.threshold > 0.0
            && (!self.kind.is_share() || self.threshold <= 1.0)
            && self.threshold <= 1e12;
        if !ok {
            let range = if self.kind.is_share() {
                "a share above 0 and at most 1"
            } else {
                "an amount above 0"
            };
            return Err(WarrenError::invalid(format!(
                "the {} rule's threshold must be {range}, not {}",
                self.kind, self.threshold
            )));
        }
        if self.for_s > MAX_FOR_S {
            return Err(WarrenError::invalid(format!(
                "for_s is at most {MAX_FOR_S} (a week), not {}",
                self.for_s
            )));
        }
        Ok(())
    }

    /// Its measurement in `reading`.
    pub fn value(&self, reading: &Reading) -> f64 {
        match self.kind {
            RuleKind::Cpu => reading.cpu,
            RuleKind::Memory => reading.memory,
            RuleKind::Pids => reading.pids,
            RuleKind::SpendRate => reading.spend_per_hour,
            RuleKind::EgressDenials => reading.egress_denials_per_minute,
            RuleKind::ProcessAge => reading.oldest_process_s,
            RuleKind::Forks => reading.forks_per_minute,
        }
    }
}

/// The rules in force where nobody set one: notices, never actions.
pub fn defaults() -> Vec<Rule> {
    vec![
        Rule {
            kind: RuleKind::Cpu,
            threshold: 0.95,
            for_s: 600,
            action: RuleAction::Notify,
        },
        Rule {
            kind: RuleKind::Memory,
            threshold: 0.95,
            for_s: 300,
            action: RuleAction::Notify,
        },
        Rule {
            kind: RuleKind::Pids,
            threshold: 0.9,
            for_s: 60,
            action: RuleAction::Notify,
        },
        Rule {
            kind: RuleKind::EgressDenials,
            threshold: 60.0,
            for_s: 60,
            action: RuleAction::Notify,
        },
        Rule {
            kind: RuleKind::Forks,
            threshold: 30.0,
            for_s: 0,
            action: RuleAction::Notify,
        },
    ]
}

/// One running sandbox's measurements from a meter sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub cpu: f64,
    pub memory: f64,
    pub pids: f64,
    pub spend_per_hour: f64,
    pub egress_denials_per_minute: f64,
    /// Filled in only while a `process_age` rule is in force for it.
    pub oldest_process_s: f64,
    pub forks_per_minute: f64,
}

/// The rules in force: for each kind the first of `team`, `operator`,
/// then the defaults that has one.
pub fn effective(team: &[Rule], operator: &[Rule]) -> Vec<Rule> {
    let defaults = defaults();
    RuleKind::ALL
        .into_iter()
        .filter_map(|kind| {
            [team, operator, defaults.as_slice()]
                .into_iter()
                .find_map(|list| list.iter().find(|r| r.kind == kind).copied())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: RuleKind, threshold: f64, action: RuleAction) -> Rule {
        Rule {
            kind,
            threshold,
            for_s: 0,
            action,
        }
    }

    #[test]
    fn a_team_rule_replaces_the_operators_which_replaces_the_default() {
        let team = [rule(RuleKind::Cpu, 0.5, RuleAction::Pause)];
        let operator = [
            rule(RuleKind::Cpu, 0.7, RuleAction::Kill),
            rule(RuleKind::SpendRate, 2.0, RuleAction::Notify),
        ];
        let rules = effective(&team, &operator);
        // No default watches process ages.
        assert_eq!(rules.len(), 6);
        assert!(rules.iter().all(|r| r.kind != RuleKind::ProcessAge));
        assert_eq!(rules[0], team[0]);
        assert_eq!(rules[1].kind, RuleKind::Memory);
        assert_eq!(rules[1].threshold, 0.95);
        assert_eq!(rules[3], operator[1]);
    }

    #[test]
    fn thresholds_and_durations_are_checked() {
        rule(RuleKind::Cpu, 0.9, RuleAction::Pause)
            .validate()
            .unwrap();
        rule(RuleKind::SpendRate, 5.0, RuleAction::Kill)
            .validate()
            .unwrap();
        // Counts and ages are amounts, not shares.
        rule(RuleKind::EgressDenials, 120.0, RuleAction::Pause)
            .validate()
            .unwrap();
        rule(RuleKind::ProcessAge, 3600.0, RuleAction::Kill)
            .validate()
            .unwrap();
        for bad in [
            rule(RuleKind::Cpu, 1.5, RuleAction::Pause),
            rule(RuleKind::Memory, 0.0, RuleAction::Pause),
            rule(RuleKind::Pids, f64::NAN, RuleAction::Pause),
            rule(RuleKind::Forks, -1.0, RuleAction::Pause),
            Rule {
                for_s: MAX_FOR_S + 1,
                ..rule(RuleKind::Cpu, 0.5, RuleAction::Notify)
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!("disk".parse::<RuleKind>().is_err());
        for kind in RuleKind::ALL {
            assert_eq!(kind.as_str().parse::<RuleKind>().unwrap(), kind);
        }
    }
}
