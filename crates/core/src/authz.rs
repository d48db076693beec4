//! Who may do what: roles, scopes and the permission sets they grant.
//!
//! A key carries one [`Role`] and, optionally, a list of [`Scope`]s; what it
//! may do is the role's grant intersected with the scopes (no scopes means
//! the whole grant). A sandbox token may do the intersection of its
//! dispatcher's permissions and [`Permissions::SANDBOX_TOKEN`], and only on
//! its own sandbox. Scopes never add rights a role lacks.
//!
//! Roles are ordered: `viewer < member < admin`. A key may only mint keys
//! whose role and scopes do not exceed its own.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::WarrenError;

/// One right, named `area:verb` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    /// List and inspect sandboxes, templates and their timelines.
    SandboxesRead,
    /// Create sandboxes (also by fork or from a snapshot).
    SandboxesCreate,
    /// Run commands, open terminals, read and write files in sandboxes.
    SandboxesExec,
    /// Kill, extend, pause, resume and roll back sandboxes.
    SandboxesManage,
    /// Build templates.
    TemplatesBuild,
    /// Let sandboxes use the team's secrets.
    SecretsUse,
    /// Create and delete the team's secrets.
    SecretsManage,
    /// Read the audit log and its proofs.
    AuditRead,
    /// Create users and keys of the team, revoke keys.
    KeysManage,
    /// Create teams (operators only).
    TeamsManage,
    /// Send events to sandboxes' inboxes.
    EventsSend,
    /// List sandboxes' inboxes.
    EventsRead,
    /// List the team's webhook hooks (never their secrets).
    HooksRead,
    /// Create and delete the team's webhook hooks.
    HooksWrite,
    /// List the team's lifecycle webhooks and their delivery logs.
    WebhooksRead,
    /// Register and delete the team's lifecycle webhooks.
    WebhooksWrite,
}

impl Scope {
    pub const ALL: [Scope; 16] = [
        Self::SandboxesRead,
        Self::SandboxesCreate,
        Self::SandboxesExec,
        Self::SandboxesManage,
        Self::TemplatesBuild,
        Self::SecretsUse,
        Self::SecretsManage,
        Self::AuditRead,
        Self::KeysManage,
        Self::TeamsManage,
        Self::EventsSend,
        Self::EventsRead,
        Self::HooksRead,
        Self::HooksWrite,
        Self::WebhooksRead,
        Self::WebhooksWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SandboxesRead => "sandboxes:read",
            Self::SandboxesCreate => "sandboxes:create",
            Self::SandboxesExec => "sandboxes:exec",
            Self::SandboxesManage => "sandboxes:manage",
            Self::TemplatesBuild => "templates:build",
            Self::SecretsUse => "secrets:use",
            Self::SecretsManage => "secrets:manage",
            Self::AuditRead => "audit:read",
            Self::KeysManage => "keys:manage",
            Self::TeamsManage => "teams:manage",
            Self::EventsSend => "events:send",
            Self::EventsRead => "events:read",
            Self::HooksRead => "hooks:read",
            Self::HooksWrite => "hooks:write",
            Self::WebhooksRead => "webhooks:read",
            Self::WebhooksWrite => "webhooks:write",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                WarrenError::invalid(format!(
                    "unknown scope '{}' (known: {})",
                    s.chars().take(64).collect::<String>(),
                    known.join(", ")
                ))
            })
    }
}

impl TryFrom<String> for Scope {
    type Error = WarrenError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.as_str().to_owned()
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u32);

impl Permissions {
    pub const NONE: Permissions = Permissions(0);

    /// What a sandbox token may do at most (on its own sandbox only): read
    /// itself and its events, and fork itself.
    pub const SANDBOX_TOKEN: Permissions =
        Permissions::of(&[Scope::SandboxesRead, Scope::SandboxesCreate]);

    pub const fn of(scopes: &[Scope]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < scopes.len() {
            bits |= 1 << (scopes[i] as u32);
            i += 1;
        }
        Self(bits)
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in `self`.
    pub fn covers(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersect(self, other: Permissions) -> Self {
        Self(self.0 & other.0)
    }

    /// The scopes in wire order.
    pub fn scopes(self) -> Vec<Scope> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .collect()
    }
}

impl FromIterator<Scope> for Permissions {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

/// What a key is for, broadly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Looks: lists sandboxes, reads the audit log. Cannot create or exec.
    Viewer,
    /// Works: creates and drives sandboxes, builds templates, uses secrets.
    Member,
    /// Administers the team: users, keys, secrets. In the operator team, an
    /// admin also creates teams.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Self::Viewer, Self::Member, Self::Admin];

    /// What the role grants; `operator` for keys of the operator team.
    pub fn grants(self, operator: bool) -> Permissions {
        use Scope as S;
        const VIEWER: &[Scope] = &[S::SandboxesRead, S::AuditRead, S::EventsRead, S::HooksRead];
        const MEMBER: &[Scope] = &[
            S::SandboxesRead,
            S::AuditRead,
            S::EventsRead,
            S::EventsSend,
            S::HooksRead,
            S::HooksWrite,
            S::SandboxesCreate,
            S::SandboxesExec,
            S::SandboxesManage,
            S::TemplatesBuild,
            S::SecretsUse,
            S::WebhooksRead,
            S::WebhooksWrite,
        ];
        let member = Permissions::of(MEMBER);
        match self {
            Self::Viewer => Permissions::of(VIEWER),
            Self::Member => member,
            Self::Admin => {
                let mut admin = member.0 | S::SecretsManage.bit() | S::KeysManage.bit();
                if operator {
                    admin |= S::TeamsManage.bit();
                }
                Permissions(admin)
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                WarrenError::invalid(format!(
                    "unknown role '{}' (expected admin, member or viewer)",
                    s.chars().take(64).collect::<String>()
                ))
            })
    }
}

/// The permissions of a key with `role` and optional `scopes`.
pub fn key_permissions(role: Role, scopes: Option<&[Scope]>, operator: bool) -> Permissions {
    let grant = role.grants(operator);
    match scopes {
        Some(scopes) => grant.intersect(scopes.iter().copied().collect()),
        None => grant,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_unknown_ones_are_named() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
        }
        let err = "sandboxes:destroy".parse::<Scope>().unwrap_err();
        assert!(err.message.contains("sandboxes:destroy"), "{}", err.message);
    }

    #[test]
    fn viewers_cannot_create_or_exec() {
        let v = Role::Viewer.grants(false);
        assert!(v.contains(Scope::SandboxesRead));
        assert!(!v.contains(Scope::SandboxesCreate));
        assert!(!v.contains(Scope::SandboxesExec));
        assert!(!v.contains(Scope::KeysManage));
    }

    #[test]
    fn roles_are_nested_and_only_operator_admins_manage_teams() {
        let (v, m, a) = (
            Role::Viewer.grants(false),
            Role::Member.grants(false),
            Role::Admin.grants(false),
        );
        assert!(m.covers(v) && a.covers(m) && !v.covers(m) && !m.covers(a));
        assert!(!a.contains(Scope::TeamsManage));
        assert!(Role::Admin.grants(true).contains(Scope::TeamsManage));
        assert!(!Role::Member.grants(true).contains(Scope::TeamsManage));
    }

    #[test]
    fn scopes_restrict_and_never_extend() {
        let p = key_permissions(
            Role::Viewer,
            Some(&[Scope::SandboxesRead, Scope::SandboxesExec]),
            false,
        );
        assert_eq!(p.scopes(), vec![Scope::SandboxesRead]);
        let p = key_permissions(Role::Member, Some(&[Scope::SandboxesExec]), false);
        assert_eq!(p.scopes(), vec![Scope::SandboxesExec]);
        assert_eq!(
            key_permissions(Role::Member, None, false),
            Role::Member.grants(false)
        );
    }

    #[test]
    fn sandbox_tokens_cannot_exceed_their_dispatcher() {
        let viewer = Role::Viewer.grants(false);
        let t = viewer.intersect(Permissions::SANDBOX_TOKEN);
        assert!(t.contains(Scope::SandboxesRead));
        assert!(!t.contains(Scope::SandboxesCreate));
        assert!(!Permissions::SANDBOX_TOKEN.contains(Scope::SandboxesExec));
    }
}
