//! What calling a route needs: the scope, and whether a sandbox token may
//! call it (on its own sandbox only). Each route is listed with its rule
//! beside its handler (`api::routes`, `e2b::routes`); the authorizer looks
//! requests up there by method and matched route, and refuses a route that
//! has none.

use warren_core::Scope;

/// What calling one route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// `None`: any authenticated caller.
    pub scope: Option<Scope>,
    /// Whether a sandbox token may call it (with `{id}` its own sandbox).
    pub sandbox_token: bool,
}

/// Callers whose key has `scope`; no sandbox token.
pub const fn needs(scope: Scope) -> Rule {
    Rule {
        scope: Some(scope),
        sandbox_token: false,
    }
}

/// Callers with `scope`, a sandbox token too (on its own sandbox).
pub const fn needs_or_token(scope: Scope) -> Rule {
    Rule {
        scope: Some(scope),
        sandbox_token: true,
    }
}

/// Any authenticated caller, a sandbox token too (on its own sandbox).
pub const fn token_or_key() -> Rule {
    Rule {
        scope: None,
        sandbox_token: true,
    }
}
