//! The one table of who may call what: every route names the scope it
//! needs and whether a sandbox token may call it (on its own sandbox only).
//!
//! The authorizer looks requests up by method and matched route; a route
//! missing from the table is refused, so a new endpoint is closed until it
//! is listed here (a test checks that every documented route is).

use axum::http::Method;
use warren_core::Scope;

/// What calling one route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// `None`: any authenticated caller.
    pub scope: Option<Scope>,
    /// Whether a sandbox token may call it (with `{id}` its own sandbox).
    pub sandbox_token: bool,
}

const fn needs(scope: Scope) -> Rule {
    Rule {
        scope: Some(scope),
        sandbox_token: false,
    }
}

const fn needs_or_token(scope: Scope) -> Rule {
    Rule {
        scope: Some(scope),
        sandbox_token: true,
    }
}

/// The rule for `method` on the route template `route` (as axum's
/// `MatchedPath` spells it), or `None` when the route is not listed.
pub fn rule_for(method: &Method, route: &str) -> Option<Rule> {
    use Scope as S;
    let m = method.as_str();
    let rule = match (m, route) {
        ("GET", "/v1/whoami") => Rule {
            scope: None,
            sandbox_token: true,
        },
        ("GET", "/v1/sandboxes") => needs(S::SandboxesRead),
        ("POST", "/v1/sandboxes") => needs(S::SandboxesCreate),
        ("GET", "/v1/sandboxes/{id}") => needs_or_token(S::SandboxesRead),
        ("DELETE", "/v1/sandboxes/{id}") => needs(S::SandboxesManage),
        ("POST", "/v1/sandboxes/{id}/timeout") => needs(S::SandboxesManage),
        ("POST", "/v1/sandboxes/{id}/exec") => needs(S::SandboxesExec),
        ("GET" | "PUT", "/v1/sandboxes/{id}/files") => needs(S::SandboxesExec),
        ("GET", "/v1/sandboxes/{id}/pty") => needs(S::SandboxesExec),
        ("GET", "/v1/templates") => needs(S::SandboxesRead),
        ("POST", "/v1/templates/{name}/build") => needs(S::TemplatesBuild),
        // Templates are the host's, shared by every team, and an import
        // puts arbitrary content under a name of the caller's choosing:
        // operators only.
        ("POST", "/v1/templates/{name}/import") => needs(S::TeamsManage),
        ("GET" | "POST", "/v1/teams") => needs(S::TeamsManage),
        // Quotas bound what a team may take of the host: operators only.
        ("GET" | "PUT", "/v1/teams/{team}/quota") => needs(S::TeamsManage),
        ("GET" | "POST", "/v1/users") => needs(S::KeysManage),
        ("GET" | "POST", "/v1/keys") => needs(S::KeysManage),
        ("DELETE", "/v1/keys/{id}") => needs(S::KeysManage),
        ("POST", "/v1/secrets") | ("DELETE", "/v1/secrets/{name}") => needs(S::SecretsManage),
        ("GET", "/v1/secrets") => needs(S::SecretsUse),
        ("GET", "/v1/sandboxes/{id}/timeline") => needs(S::SandboxesRead),
        ("POST", "/v1/sandboxes/{id}/events") => needs(S::EventsSend),
        ("GET", "/v1/sandboxes/{id}/events") => needs(S::EventsRead),
        ("PUT", "/v1/sandboxes/{id}/wake") => needs(S::SandboxesManage),
        // A sandbox takes and acknowledges its own events (the handler
        // refuses API keys).
        ("GET", "/v1/self/events") | ("POST", "/v1/self/events/ack") => Rule {
            scope: None,
            sandbox_token: true,
        },
        // A sandbox may set timers on itself ("wake me in an hour").
        ("GET" | "POST", "/v1/sandboxes/{id}/timers") => needs_or_token(if m == "GET" {
            S::EventsRead
        } else {
            S::EventsSend
        }),
        ("DELETE", "/v1/sandboxes/{id}/timers/{timer}") => needs_or_token(S::EventsSend),
        ("GET", "/v1/hooks" | "/v1/hooks/{id}") => needs(S::HooksRead),
        ("POST", "/v1/hooks" | "/v1/hooks/{id}/subscriptions")
        | ("DELETE", "/v1/hooks/{id}" | "/v1/hooks/{id}/subscriptions/{sub}") => {
            needs(S::HooksWrite)
        }
        ("POST", "/v1/webhooks") | ("DELETE", "/v1/webhooks/{id}") => needs(S::WebhooksWrite),
        ("GET", "/v1/webhooks" | "/v1/webhooks/{id}" | "/v1/webhooks/{id}/deliveries") => {
            needs(S::WebhooksRead)
        }
        ("PUT", "/v1/sandboxes/{id}/network") => needs(S::SandboxesManage),
        ("GET", "/v1/sandboxes/{id}/network/events") => needs(S::SandboxesRead),
        ("POST", "/v1/sandboxes/{id}/pause" | "/v1/sandboxes/{id}/resume") => {
            needs(S::SandboxesManage)
        }
        ("POST", "/v1/sandboxes/{id}/rollback") => needs(S::SandboxesManage),
        ("DELETE", "/v1/sandboxes/{id}/snapshots/{snapshot}") => needs(S::SandboxesManage),
        ("GET", "/v1/sandboxes/{id}/snapshots") => needs(S::SandboxesRead),
        // Taking a snapshot copies the sandbox's memory and files: as much
        // access as exec gives.
        ("POST", "/v1/sandboxes/{id}/snapshots") => needs(S::SandboxesExec),
        // A sandbox may fork itself: the branches act for its dispatcher.
        ("POST", "/v1/sandboxes/{id}/fork") => needs_or_token(S::SandboxesCreate),
        ("GET", "/v1/audit/entries" | "/v1/audit/entries/{index}/proof") => needs(S::AuditRead),
        ("GET", "/v1/audit/consistency" | "/v1/audit/heads") => needs(S::AuditRead),
        // E2B's control plane (crates/server/src/e2b), for API keys only.
        ("GET", "/sandboxes" | "/v2/sandboxes" | "/sandboxes/{id}") => needs(S::SandboxesRead),
        ("GET", "/sandboxes/{id}/metrics" | "/templates") => needs(S::SandboxesRead),
        ("POST", "/sandboxes" | "/v2/sandboxes") => needs(S::SandboxesCreate),
        // Connect hands out the envd access token, the key to exec and files.
        ("POST", "/sandboxes/{id}/connect" | "/v2/sandboxes/{id}/connect") => {
            needs(S::SandboxesExec)
        }
        ("DELETE", "/sandboxes/{id}") => needs(S::SandboxesManage),
        ("POST", "/sandboxes/{id}/timeout" | "/sandboxes/{id}/refreshes") => {
            needs(S::SandboxesManage)
        }
        ("POST", "/sandboxes/{id}/pause" | "/sandboxes/{id}/resume") => needs(S::SandboxesManage),
        ("POST", "/sandboxes/{id}/fork") => needs(S::SandboxesCreate),
        ("PUT", "/sandboxes/{id}/network") => needs(S::SandboxesManage),
        ("POST", "/sandboxes/{id}/snapshots") => needs(S::SandboxesExec),
        ("GET", "/snapshots") => needs(S::SandboxesRead),
        ("DELETE", "/templates/{id}") => needs(S::SandboxesManage),
        ("GET", "/events/webhooks" | "/events/webhooks/{id}") => needs(S::WebhooksRead),
        ("POST", "/events/webhooks") => needs(S::WebhooksWrite),
        ("PATCH" | "DELETE", "/events/webhooks/{id}") => needs(S::WebhooksWrite),
        ("GET", "/events/sandboxes/{id}") => needs(S::SandboxesRead),
        _ => return None,
    };
    Some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    /// Every route the API documents has a rule: none is open by accident.
    #[test]
    fn every_documented_route_has_a_rule() {
        let doc = crate::api::ApiDoc::openapi();
        // Hook deliveries are authenticated by their signature alone.
        let public = ["/v1/health", "/v1/openapi.json", crate::api::HOOK_DELIVERY];
        let mut checked = 0;
        for (path, item) in &doc.paths.paths {
            if public.contains(&path.as_str()) {
                continue;
            }
            let methods = [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::DELETE, item.delete.is_some()),
                (Method::PATCH, item.patch.is_some()),
            ];
            for (method, present) in methods {
                if present {
                    assert!(
                        rule_for(&method, path).is_some(),
                        "{method} {path} has no permission rule"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 15, "only {checked} routes documented");
    }

    #[test]
    fn sandbox_tokens_reach_only_reading_forking_and_timing_themselves_and_their_own_events() {
        let token_routes: Vec<_> = [
            (Method::GET, "/v1/sandboxes/{id}"),
            (Method::POST, "/v1/sandboxes/{id}/fork"),
            (Method::POST, "/v1/sandboxes/{id}/snapshots"),
            (Method::POST, "/v1/sandboxes/{id}/pause"),
            (Method::POST, "/v1/sandboxes"),
            (Method::POST, "/v1/sandboxes/{id}/exec"),
            (Method::GET, "/v1/sandboxes"),
            (Method::POST, "/v1/keys"),
            (Method::POST, "/v1/sandboxes/{id}/events"),
            (Method::PUT, "/v1/sandboxes/{id}/wake"),
            (Method::GET, "/v1/self/events"),
            (Method::POST, "/v1/self/events/ack"),
            (Method::POST, "/v1/sandboxes/{id}/timers"),
        ]
        .into_iter()
        .filter(|(m, r)| rule_for(m, r).unwrap().sandbox_token)
        .map(|(_, r)| r)
        .collect();
        assert_eq!(
            token_routes,
            [
                "/v1/sandboxes/{id}",
                "/v1/sandboxes/{id}/fork",
                "/v1/self/events",
                "/v1/self/events/ack",
                "/v1/sandboxes/{id}/timers"
            ]
        );
        assert!(rule_for(&Method::GET, "/v1/nope").is_none());
    }

    #[test]
    fn only_operators_read_and_set_quotas() {
        for method in [Method::GET, Method::PUT] {
            let rule = rule_for(&method, "/v1/teams/{team}/quota").unwrap();
            assert_eq!(rule.scope, Some(Scope::TeamsManage));
            assert!(!rule.sandbox_token);
        }
        assert!(
            !warren_core::Role::Admin
                .grants(false)
                .contains(Scope::TeamsManage)
        );
    }
}
