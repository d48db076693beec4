//! E2B's builds as its API shows them: asked for (`waiting`), `building`,
//! then `ready` or `error`, each with its log entries.
//!
//! A build id is handed out by `POST /v3/templates` before anything runs;
//! `POST /v2/templates/{id}/builds/{buildID}` starts it once (a second
//! start is refused), and the status endpoint pages through its log by
//! offset. Records live in the daemon's memory: a build outlives its
//! client but not the daemon (after a restart its id is unknown, and the
//! template keeps the version it had). At most [`MAX_RECORDS`] are kept;
//! finished ones go first, oldest first, and a record's log stops at
//! [`MAX_ENTRIES`] entries with a line saying so.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;
use warren_core::{TeamId, WarrenError};

/// Builds remembered at once.
pub const MAX_RECORDS: usize = 1000;
/// Log entries one build keeps.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Building,
    Ready,
    Error,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Building => "building",
            Phase::Ready => "ready",
            Phase::Error => "error",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub at: OffsetDateTime,
    pub level: &'static str,
    pub message: String,
    /// E2B's step number of the step the entry belongs to.
    pub step: Option<String>,
}

/// One build, as its status shows it.
#[derive(Debug, Clone)]
pub struct Record {
    pub template: String,
    pub team: TeamId,
    /// Tags the version gets besides `latest`.
    pub tags: Vec<String>,
    pub phase: Phase,
    pub entries: Vec<Entry>,
    /// Why it failed, and the step that did.
    pub failure: Option<(String, Option<String>)>,
    /// The step running now.
    step: Option<String>,
    created: OffsetDateTime,
}

#[derive(Default)]
pub struct Registry {
    records: Mutex<HashMap<String, Record>>,
}

impl Registry {
    /// A new build of `template` for `team`; returns its id.
    pub fn add(&self, template: &str, team: &TeamId, tags: Vec<String>) -> String {
        let id = new_build_id();
        let mut records = self.lock();
        if records.len() >= MAX_RECORDS {
            let oldest = records
                .iter()
                .min_by_key(|(_, r)| {
                    (
                        matches!(r.phase, Phase::Waiting | Phase::Building),
                        r.created,
                    )
                })
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                records.remove(&oldest);
            }
        }
        records.insert(
            id.clone(),
            Record {
                template: template.to_owned(),
                team: team.clone(),
                tags,
                phase: Phase::Waiting,
                entries: Vec::new(),
                failure: None,
                step: None,
                created: OffsetDateTime::now_utc(),
            },
        );
        id
    }

    /// The build `id` of `template`, if `team`'s.
    pub fn get(&self, id: &str, template: &str, team: &TeamId) -> Result<Record, WarrenError> {
        self.lock()
            .get(id)
            .filter(|r| r.template == template && &r.team == team)
            .cloned()
            .ok_or_else(|| {
                WarrenError::not_found(format!(
                    "no build {id} of template {template}: builds are known from POST /v3/templates until the daemon restarts"
                ))
            })
    }

    /// Moves a waiting build to building; refuses any other.
    pub fn start(&self, id: &str) -> Result<(), WarrenError> {
        let mut records = self.lock();
        let record = records
            .get_mut(id)
            .ok_or_else(|| WarrenError::not_found(format!("no build {id}")))?;
        if record.phase != Phase::Waiting {
            return Err(WarrenError::precondition(format!(
                "build {id} was started already; ask POST /v3/templates for a new build"
            )));
        }
        record.phase = Phase::Building;
        Ok(())
    }

    /// Adds a line of build output. `step i/n (line L): …` lines (the
    /// builder's) mark the start of E2B's step `L`.
    pub fn log(&self, id: &str, level: &'static str, message: String) {
        let mut records = self.lock();
        let Some(record) = records.get_mut(id) else {
            return;
        };
        if let Some(step) = step_of(&message) {
            record.step = Some(step);
        }
        match record.entries.len() {
            n if n < MAX_ENTRIES => record.entries.push(Entry {
                at: OffsetDateTime::now_utc(),
                level,
                message,
                step: record.step.clone(),
            }),
            n if n == MAX_ENTRIES => record.entries.push(Entry {
                at: OffsetDateTime::now_utc(),
                level: "warn",
                message: format!("the log stops here: a build keeps {MAX_ENTRIES} lines"),
                step: None,
            }),
            _ => {}
        }
    }

    /// Ends the build: ready, or failed with `error`.
    pub fn finish(&self, id: &str, error: Option<String>) {
        let mut records = self.lock();
        let Some(record) = records.get_mut(id) else {
            return;
        };
        match error {
            None => record.phase = Phase::Ready,
            Some(message) => {
                record.phase = Phase::Error;
                let step = failed_step(&message).or_else(|| record.step.clone());
                record.failure = Some((message, step));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A random UUID (version 4), the shape E2B's build ids have.
fn new_build_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// E2B's step name of line `line`: `base` for the base's own steps.
fn step_name(line: &str) -> String {
    if line == "0" {
        "base".to_owned()
    } else {
        line.to_owned()
    }
}

/// `step 2/5 (line 3): …` → `3`.
fn step_of(message: &str) -> Option<String> {
    let rest = message.strip_prefix("step ")?;
    let (_, rest) = rest.split_once(" (line ")?;
    let (line, _) = rest.split_once(')')?;
    line.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| step_name(line))
}

/// `step at line 3 (`…`) exited …` → `3`.
fn failed_step(message: &str) -> Option<String> {
    let rest = message.strip_prefix("step at line ")?;
    let line: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!line.is_empty()).then(|| step_name(&line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_starts_once_and_its_log_names_the_steps() {
        let reg = Registry::default();
        let team = TeamId::generate();
        let id = reg.add("app", &team, vec![]);
        assert!(reg.get(&id, "other", &team).is_err());
        assert!(reg.get(&id, "app", &TeamId::generate()).is_err());
        reg.start(&id).unwrap();
        assert!(reg.start(&id).is_err(), "a second start is refused");
        reg.log(&id, "info", "step 1/2 (line 0): USER user".into());
        reg.log(&id, "info", "step 2/2 (line 3): RUN false".into());
        reg.log(&id, "info", "  output".into());
        reg.finish(
            &id,
            Some("step at line 3 (`RUN false`) exited with code 1".into()),
        );
        let r = reg.get(&id, "app", &team).unwrap();
        assert_eq!(r.phase, Phase::Error);
        let steps: Vec<_> = r.entries.iter().map(|e| e.step.as_deref()).collect();
        assert_eq!(steps, [Some("base"), Some("3"), Some("3")]);
        assert_eq!(r.failure.unwrap().1.as_deref(), Some("3"));
    }

    #[test]
    fn the_log_and_the_records_are_bounded() {
        let reg = Registry::default();
        let team = TeamId::generate();
        let id = reg.add("app", &team, vec![]);
        for i in 0..MAX_ENTRIES + 50 {
            reg.log(&id, "info", format!("line {i}"));
        }
        let r = reg.get(&id, "app", &team).unwrap();
        assert_eq!(r.entries.len(), MAX_ENTRIES + 1);
        assert!(r.entries.last().unwrap().message.contains("stops here"));
        reg.finish(&id, None);
        for _ in 0..MAX_RECORDS {
            reg.add("app", &team, vec![]);
        }
        assert!(
            reg.get(&id, "app", &team).is_err(),
            "the finished one went first"
        );
        assert_eq!(reg.lock().len(), MAX_RECORDS);
    }
}
