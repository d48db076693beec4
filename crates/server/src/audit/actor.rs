//! Who acted: a team and an actor chain, outermost first.

use crate::auth::Caller;

/// The team every actor belongs to until teams exist.
const DEFAULT_TEAM: &str = "default";

/// Who acted: the team the act belongs to and the chain of actors, outermost
/// first (`["user:alice", "sandbox:…"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    pub team: String,
    pub chain: Vec<String>,
}

impl AuditActor {
    /// The authenticated caller of an API request. The one place that maps
    /// callers to actors.
    pub fn from_caller(caller: &Caller) -> Self {
        Self {
            team: DEFAULT_TEAM.to_owned(),
            chain: vec![format!("key:{}", caller.key_id)],
        }
    }

    /// A part of the daemon acting on its own, e.g. `system("reaper")`.
    pub fn system(component: &str) -> Self {
        Self {
            team: DEFAULT_TEAM.to_owned(),
            chain: vec![format!("system:{component}")],
        }
    }
}
