//! Every action the audit log records. The recorders take an [`Action`],
//! the timeline reads entries back into one; the dotted names are what the
//! log stores and what `GET /v1/audit/entries?action=` filters on, so a
//! name never changes once released.

/// One kind of audited act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    SandboxCreate,
    SandboxKill,
    /// Killed by the reaper at the end of its lifetime.
    SandboxExpire,
    /// Died by itself, or could not be started or restored.
    SandboxFail,
    SandboxTimeout,
    SandboxPause,
    SandboxResume,
    SandboxRollback,
    SandboxFork,
    SnapshotCreate,
    SnapshotDelete,
    ProcessExec,
    /// A running command ended on request.
    ProcessKill,
    FileWrite,
    PtyOpen,
    /// A terminal's recording was kept (its size and SHA-256).
    PtyRecord,
    /// A sandbox token handed to the sandbox.
    TokenIssue,
    NetworkUpdate,
    NetworkDeny,
    KeyCreate,
    KeyRevoke,
    /// A key was exchanged for a dashboard session.
    SessionOpen,
    /// A dashboard session was logged out.
    SessionClose,
    UserCreate,
    TeamCreate,
    TeamQuota,
    SecretSet,
    SecretDelete,
    VolumeCreate,
    VolumeDelete,
    /// A file written through the volume content API.
    VolumeWrite,
    /// A directory made through the volume content API.
    VolumeMakeDir,
    /// Owner or mode changed through the volume content API.
    VolumeUpdate,
    /// A file or directory removed through the volume content API.
    VolumeRemove,
    /// A state-changing API call, whatever it answered.
    ApiRequest,
    /// An event put in a sandbox's inbox.
    EventReceive,
    /// A sandbox acknowledged the events of its inbox up to a number.
    EventAck,
    /// A sandbox's wake policy changed.
    InboxUpdate,
    HookCreate,
    HookDelete,
    HookSubscribe,
    HookUnsubscribe,
    /// A delivery to a hook accepted (and routed to its sandboxes).
    HookDeliver,
    TimerCreate,
    TimerDelete,
    /// A budget created or changed.
    BudgetSet,
    BudgetDelete,
    /// An operator lifted a budget for its period, or put it back.
    BudgetOverride,
    /// A budget's spend passed its warning share (once per period).
    BudgetWarning,
    /// A budget's spend reached its amount (once per period).
    BudgetExceeded,
    /// A team's or the operator's anomaly rules replaced.
    RulesSet,
    /// An anomaly rule fired on a sandbox.
    RuleFire,
}

impl Action {
    pub const ALL: [Action; 52] = [
        Self::SandboxCreate,
        Self::SandboxKill,
        Self::SandboxExpire,
        Self::SandboxFail,
        Self::SandboxTimeout,
        Self::SandboxPause,
        Self::SandboxResume,
        Self::SandboxRollback,
        Self::SandboxFork,
        Self::SnapshotCreate,
        Self::SnapshotDelete,
        Self::ProcessExec,
        Self::ProcessKill,
        Self::FileWrite,
        Self::PtyOpen,
        Self::PtyRecord,
        Self::TokenIssue,
        Self::NetworkUpdate,
        Self::NetworkDeny,
        Self::KeyCreate,
        Self::KeyRevoke,
        Self::SessionOpen,
        Self::SessionClose,
        Self::UserCreate,
        Self::TeamCreate,
        Self::TeamQuota,
        Self::SecretSet,
        Self::SecretDelete,
        Self::VolumeCreate,
        Self::VolumeDelete,
        Self::VolumeWrite,
        Self::VolumeMakeDir,
        Self::VolumeUpdate,
        Self::VolumeRemove,
        Self::ApiRequest,
        Self::EventReceive,
        Self::EventAck,
        Self::InboxUpdate,
        Self::HookCreate,
        Self::HookDelete,
        Self::HookSubscribe,
        Self::HookUnsubscribe,
        Self::HookDeliver,
        Self::TimerCreate,
        Self::TimerDelete,
        Self::BudgetSet,
        Self::BudgetDelete,
        Self::BudgetOverride,
        Self::BudgetWarning,
        Self::BudgetExceeded,
        Self::RulesSet,
        Self::RuleFire,
    ];

    /// The name the log stores.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SandboxCreate => "sandbox.create",
            Self::SandboxKill => "sandbox.kill",
            Self::SandboxExpire => "sandbox.expire",
            Self::SandboxFail => "sandbox.fail",
            Self::SandboxTimeout => "sandbox.timeout",
            Self::SandboxPause => "sandbox.pause",
            Self::SandboxResume => "sandbox.resume",
            Self::SandboxRollback => "sandbox.rollback",
            Self::SandboxFork => "sandbox.fork",
            Self::SnapshotCreate => "snapshot.create",
            Self::SnapshotDelete => "snapshot.delete",
            Self::ProcessExec => "process.exec",
            Self::ProcessKill => "process.kill",
            Self::FileWrite => "file.write",
            Self::PtyOpen => "pty.open",
            Self::PtyRecord => "pty.record",
            Self::TokenIssue => "token.issue",
            Self::NetworkUpdate => "network.update",
            Self::NetworkDeny => "network.deny",
            Self::KeyCreate => "key.create",
            Self::KeyRevoke => "key.revoke",
            Self::SessionOpen => "session.open",
            Self::SessionClose => "session.close",
            Self::UserCreate => "user.create",
            Self::TeamCreate => "team.create",
            Self::TeamQuota => "team.quota",
            Self::SecretSet => "secret.set",
            Self::SecretDelete => "secret.delete",
            Self::VolumeCreate => "volume.create",
            Self::VolumeDelete => "volume.delete",
            Self::VolumeWrite => "volume.write",
            Self::VolumeMakeDir => "volume.mkdir",
            Self::VolumeUpdate => "volume.update",
            Self::VolumeRemove => "volume.remove",
            Self::ApiRequest => "api.request",
            Self::EventReceive => "event.receive",
            Self::EventAck => "event.ack",
            Self::InboxUpdate => "inbox.update",
            Self::HookCreate => "hook.create",
            Self::HookDelete => "hook.delete",
            Self::HookSubscribe => "hook.subscribe",
            Self::HookUnsubscribe => "hook.unsubscribe",
            Self::HookDeliver => "hook.deliver",
            Self::TimerCreate => "timer.create",
            Self::TimerDelete => "timer.delete",
            Self::BudgetSet => "budget.set",
            Self::BudgetDelete => "budget.delete",
            Self::BudgetOverride => "budget.override",
            Self::BudgetWarning => "budget.warning",
            Self::BudgetExceeded => "budget.exceeded",
            Self::RulesSet => "rules.set",
            Self::RuleFire => "rule.fire",
        }
    }

    /// The action a stored name stands for; `None` for a name this build
    /// does not know (written by a newer one).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_its_own_name_and_reads_back() {
        let mut names = std::collections::HashSet::new();
        for a in Action::ALL {
            assert!(names.insert(a.as_str()), "{a} twice");
            assert_eq!(Action::parse(a.as_str()), Some(a));
            let (noun, verb) = a.as_str().split_once('.').unwrap();
            assert!(!noun.is_empty() && !verb.is_empty());
        }
        assert_eq!(Action::parse("sandbox.explode"), None);
    }
}
