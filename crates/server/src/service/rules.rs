//! Anomaly rules (see `warren_core::rules` and `docs/metering.md`): set by
//! team admins for their team and by operators for every team, checked
//! against every running sandbox after each meter sample.
//!
//! A firing is a `rule.fire` audit entry on the sandbox (so its timeline
//! shows it, with the measurement and the threshold), a `rule.fired`
//! lifecycle webhook, and then the rule's action by `system:rules`. The
//! engine's memory of how long a condition has held is in memory only: a
//! daemon restart starts every `for_s` again.
//!
//! Process ages are the time since the engine first saw a command in the
//! agent's list of the commands it runs (those started through the API;
//! asked only of sandboxes a `process_age` rule watches, once per sample), so they are as fine as the meter's interval
//! and start again when a sandbox stops running (a pause, a restart of the
//! daemon).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;
use warren_audit::Outcome;
use warren_core::rules::{Rule, RuleAction, RuleKind, effective};
use warren_core::{KeyId, SandboxId, TeamId, WarrenError};

use warren_envd::http_api::START_COMMAND_TAG;

use super::Sandboxes;
use super::meter::Observed;
use super::record::details;
use crate::audit::{Action, AuditActor, Event};

/// The scope of the operator's rules in the store.
const OPERATOR_SCOPE: &str = "*";

/// How long the agent may take to list a sandbox's processes.
const PROCESS_LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// Since when each rule's condition has held for each sandbox, and
/// whether it fired since; when each sandbox's processes were first seen.
#[derive(Default)]
pub struct RuleState {
    held: Mutex<HashMap<(SandboxId, RuleKind), (OffsetDateTime, bool)>>,
    processes: Mutex<HashMap<SandboxId, HashMap<u32, OffsetDateTime>>>,
}

/// A team's own rules, the operator's, and those in force for the team.
pub struct TeamRules {
    pub team: Vec<Rule>,
    pub operator: Vec<Rule>,
    pub effective: Vec<Rule>,
}

/// Whose rules a change replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleScope {
    Team(TeamId),
    Operator,
}

fn check(rules: &[Rule]) -> Result<(), WarrenError> {
    for (i, r) in rules.iter().enumerate() {
        r.validate()?;
        if rules[..i].iter().any(|o| o.kind == r.kind) {
            return Err(WarrenError::invalid(format!(
                "the {} rule is given twice: one rule per kind",
                r.kind
            )));
        }
    }
    Ok(())
}

impl Sandboxes {
    async fn stored_rules(&self) -> Result<HashMap<String, Vec<Rule>>, WarrenError> {
        let mut by_scope: HashMap<String, Vec<Rule>> = HashMap::new();
        for (scope, rule) in self.store.rules().await? {
            by_scope.entry(scope).or_default().push(rule);
        }
        Ok(by_scope)
    }

    pub async fn team_rules(&self, team: &TeamId) -> Result<TeamRules, WarrenError> {
        let mut stored = self.stored_rules().await?;
        let own = stored.remove(team.as_str()).unwrap_or_default();
        let operator = stored.remove(OPERATOR_SCOPE).unwrap_or_default();
        Ok(TeamRules {
            effective: effective(&own, &operator),
            team: own,
            operator,
        })
    }

    /// Replaces the rules of `scope` (an empty list goes back to what is
    /// in force above it); recorded as `rules.set`.
    pub async fn set_rules(
        &self,
        scope: RuleScope,
        rules: Vec<Rule>,
        actor: &AuditActor,
        by: &KeyId,
    ) -> Result<(), WarrenError> {
        check(&rules)?;
        let (key, team) = match &scope {
            RuleScope::Team(t) => (t.as_str(), Some(t)),
            RuleScope::Operator => (OPERATOR_SCOPE, None),
        };
        self.store.replace_rules(key, &rules, by).await?;
        let listed: Vec<String> = rules
            .iter()
            .map(|r| format!("{}>={} for {}s: {}", r.kind, r.threshold, r.for_s, r.action))
            .collect();
        let event = Event::new(Action::RulesSet, key.to_owned()).with("rules", listed);
        let actor = match team {
            Some(t) => actor.in_team(t),
            None => actor.clone(),
        };
        self.audit.record_done(&actor, event).await;
        Ok(())
    }

    /// Seconds since the oldest process of `id` (not the template's start
    /// command) was first seen; 0 when the agent cannot say.
    async fn oldest_process_s(&self, id: &SandboxId, now: OffsetDateTime) -> f64 {
        let listed = tokio::time::timeout(PROCESS_LIST_TIMEOUT, async {
            let client = self.agents.client(id, None).await.ok()?;
            client.list().await.ok()
        });
        let Ok(Some(listed)) = listed.await else {
            return 0.0;
        };
        let mut all = self
            .rule_state
            .processes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let seen = all.entry(id.clone()).or_default();
        let pids: Vec<u32> = listed
            .iter()
            .filter(|p| p.tag.as_deref() != Some(START_COMMAND_TAG))
            .map(|p| p.pid)
            .collect();
        seen.retain(|pid, _| pids.contains(pid));
        pids.iter()
            .map(|pid| *seen.entry(*pid).or_insert(now))
            .map(|first| (now - first).as_seconds_f64())
            .fold(0.0, f64::max)
    }

    /// Checks `observed` (one meter sample) against the rules in force and
    /// fires those whose condition has held long enough.
    pub(crate) async fn evaluate_rules(&self, mut observed: Vec<Observed>) {
        let stored = match self.stored_rules().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the anomaly rules");
                return;
            }
        };
        let none = Vec::new();
        let operator = stored.get(OPERATOR_SCOPE).unwrap_or(&none);
        let now = self.clock.now();
        self.rule_state
            .processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| observed.iter().any(|o| o.sandbox == *id));
        for o in &mut observed {
            let own = stored.get(o.team.as_str()).unwrap_or(&none);
            if effective(own, operator)
                .iter()
                .any(|r| r.kind == RuleKind::ProcessAge)
            {
                o.reading.oldest_process_s = self.oldest_process_s(&o.sandbox, now).await;
            }
        }
        let mut due = Vec::new();
        {
            let mut held = self
                .rule_state
                .held
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            held.retain(|(id, _), _| observed.iter().any(|o| o.sandbox == *id));
            for o in &observed {
                let own = stored.get(o.team.as_str()).unwrap_or(&none);
                for rule in effective(own, operator) {
                    let key = (o.sandbox.clone(), rule.kind);
                    let value = rule.value(&o.reading);
                    if value < rule.threshold {
                        held.remove(&key);
                        continue;
                    }
                    let (since, fired) = held.entry(key).or_insert((now, false));
                    let long_enough = (now - *since).whole_seconds() >= rule.for_s as i64;
                    if long_enough && !*fired {
                        *fired = true;
                        due.push((o.sandbox.clone(), rule, value));
                    }
                }
            }
        }
        for (id, rule, value) in due {
            self.fire_rule(&id, &rule, value).await;
        }
    }

    async fn fire_rule(&self, id: &SandboxId, rule: &Rule, value: f64) {
        tracing::info!(sandbox = %id, rule = %rule.kind, value, threshold = rule.threshold, action = %rule.action, "anomaly rule fired");
        let actor = AuditActor::system("rules");
        // The audit log takes no floating point numbers: decimal text.
        let facts = details([
            ("rule", rule.kind.as_str().into()),
            ("value", format!("{value:.4}").into()),
            ("threshold", rule.threshold.to_string().into()),
            ("for_s", rule.for_s.into()),
            ("action", rule.action.to_string().into()),
        ]);
        self.record_lifecycle(&actor, id, Action::RuleFire, Outcome::Ok, facts)
            .await;
        let done = match rule.action {
            RuleAction::Notify => Ok(()),
            RuleAction::Pause => self
                .pause(id, warren_core::PauseMode::Full, &actor)
                .await
                .map(drop),
            RuleAction::Kill => self.kill(id, &actor).await,
        };
        if let Err(e) = done {
            tracing::warn!(sandbox = %id, rule = %rule.kind, error = %e.message, "an anomaly rule's action failed");
        }
    }
}
