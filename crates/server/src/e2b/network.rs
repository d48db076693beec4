//! E2B's egress settings mapped onto Warren's network policy.
//!
//! E2B starts from open egress: `denyOut` lists CIDRs to refuse (no
//! domains), `allowOut` CIDRs and domains that stay reachable even so
//! (allow wins), and `allow_internet_access: false` means `denyOut:
//! ["0.0.0.0/0"]`. Warren's policy starts from `internet`, and its deny
//! rules win over allow rules. The mapping: a deny of all of IPv4 (or
//! IPv6), or `allow_internet_access: false`, is `internet: deny`; otherwise
//! `internet: allow`; `allowOut` is Warren's `allow`, and the remaining
//! `denyOut` ranges minus every allowed range are its `deny`, so an address
//! E2B lets through is never denied. One case stays Warren's: a domain of
//! `allowOut` whose addresses fall inside a narrower `denyOut` range is
//! refused there (its addresses are known only when it is resolved). With
//! neither setting given, the daemon's default policy applies.
//!
//! E2B's header transforms (`rules`: per host, headers to set) are Warren's
//! secret injections when each header's value holds one
//! `${e2b.secrets.NAME}` ([`SecretInjection::from_e2b_header`]): the egress
//! proxy sets the header with the team secret's value in the placeholder's
//! place. Transforms without a secret, egress SOCKS proxies, DNS server
//! lists and HTTPS port lists are refused rather than ignored.
//! `rules` replaces the policy's injections; an update without it keeps
//! them.
//!
//! Traffic in: `allowPublicTraffic: true` makes every exposed port public
//! (`all_ports_public`), `false` makes none public, so each needs the
//! traffic token. Left out, a create takes the daemon default policy's
//! public ports and an update keeps the sandbox's. Callers must pass [`Secrets::check_injections`] (scope and the
//! team's secrets) with the policy, as natively.
//!
//! [`Secrets::check_injections`]: crate::service::secrets::Secrets::check_injections

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use warren_core::WarrenError;
use warren_core::network::{Cidr, Internet, NetRule, NetworkPolicy, SecretInjection};

use super::control::unsupported;
use super::error::{E2bError, E2bResult};
use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, SandboxPath};
use crate::state::AppState;

/// Fields of E2B's network settings Warren has no counterpart for; a
/// request naming one with a non-empty value is refused.
const UNSUPPORTED: [&str; 3] = ["egressProxy", "dnsServers", "httpsPorts"];

/// The policy E2B's settings ask for, or `None` to take the daemon's
/// default. `base` keeps what E2B cannot say (secret injections, public
/// ports) when a live sandbox's policy is replaced; at create, it holds
/// the daemon default's public ports.
pub(super) fn to_policy(
    allow_internet_access: Option<bool>,
    network: Option<&Value>,
    base: Option<&NetworkPolicy>,
) -> E2bResult<Option<NetworkPolicy>> {
    let settings = match network {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            return Err(E2bError(WarrenError::invalid("network must be an object")));
        }
    };
    if settings.is_none() && allow_internet_access.is_none() {
        return Ok(None);
    }
    let mut policy = base.cloned().unwrap_or_default();
    policy.allow.clear();
    policy.deny.clear();
    let mut internet = allow_internet_access != Some(false);
    if let Some(map) = settings {
        for key in UNSUPPORTED {
            if map.get(key).is_some_and(|v| !is_empty(v)) {
                return Err(unsupported(&format!("network.{key}")));
            }
        }
        let mut denied = Vec::new();
        for entry in strings(map.get("denyOut"), "denyOut")? {
            if matches!(entry.as_str(), "0.0.0.0/0" | "::/0") {
                internet = false;
            } else {
                let cidr: Cidr = entry.parse().map_err(|_| {
                    E2bError(WarrenError::invalid(format!(
                        "network.denyOut takes CIDRs and IP addresses, not {entry:?} (as on E2B: allow domains with allowOut instead)"
                    )))
                })?;
                denied.push(cidr);
            }
        }
        for entry in strings(map.get("allowOut"), "allowOut")? {
            let allowed = rule(&entry)?;
            if let NetRule::Cidr(hole) = &allowed {
                denied = denied.iter().flat_map(|d| d.without(hole)).collect();
            }
            policy.allow.push(allowed);
        }
        policy.deny = denied.into_iter().map(NetRule::Cidr).collect();
        if let Some(rules) = map.get("rules").filter(|v| !v.is_null()) {
            policy.inject = injections(rules)?;
        }
        match map.get("allowPublicTraffic") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(public)) => {
                policy.all_ports_public = *public;
                if !public {
                    policy.public_ports.clear();
                }
            }
            Some(_) => {
                return Err(E2bError(WarrenError::invalid(
                    "network.allowPublicTraffic must be a boolean",
                )));
            }
        }
        match map.get("maskRequestHost") {
            None | Some(Value::Null) => {}
            Some(Value::String(host)) if host.is_empty() => policy.request_host = None,
            Some(Value::String(host)) => policy.request_host = Some(host.clone()),
            Some(_) => {
                return Err(E2bError(WarrenError::invalid(
                    "network.maskRequestHost must be a string such as localhost:${PORT}",
                )));
            }
        }
    }
    policy.internet = if internet {
        Internet::Allow
    } else {
        Internet::Deny
    };
    policy.validate().map_err(E2bError)?;
    Ok(Some(policy))
}

/// E2B's `rules`: `{host: [{"transform": {"headers": {name: value}}}]}`.
fn injections(rules: &Value) -> E2bResult<Vec<SecretInjection>> {
    let shape = || {
        E2bError(WarrenError::invalid(
            "network.rules must map hosts to lists of {\"transform\": {\"headers\": {…}}}",
        ))
    };
    let mut out = Vec::new();
    for (host, list) in rules.as_object().ok_or_else(shape)? {
        for rule in list.as_array().ok_or_else(shape)? {
            let rule = rule.as_object().ok_or_else(shape)?;
            if rule.keys().any(|k| k != "transform") {
                return Err(unsupported("network.rules other than transform"));
            }
            let Some(transform) = rule.get("transform").filter(|t| !t.is_null()) else {
                continue;
            };
            let transform = transform.as_object().ok_or_else(shape)?;
            if transform.keys().any(|k| k != "headers") {
                return Err(unsupported("network.rules transforms other than headers"));
            }
            let headers = match transform.get("headers") {
                None | Some(Value::Null) => continue,
                Some(h) => h.as_object().ok_or_else(shape)?,
            };
            for (name, value) in headers {
                let value = value.as_str().ok_or_else(shape)?;
                out.push(SecretInjection::from_e2b_header(host, name, value).map_err(E2bError)?);
            }
        }
    }
    Ok(out)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn strings(v: Option<&Value>, field: &str) -> E2bResult<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_owned).ok_or_else(|| {
                    E2bError(WarrenError::invalid(format!(
                        "network.{field} must be a list of strings"
                    )))
                })
            })
            .collect(),
        Some(_) => Err(E2bError(WarrenError::invalid(format!(
            "network.{field} must be a list of strings"
        )))),
    }
}

fn rule(entry: &str) -> E2bResult<NetRule> {
    entry.parse().map_err(E2bError)
}

/// `PUT /sandboxes/{id}/network`: replaces the running sandbox's egress
/// rules live (204).
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<SandboxPath, AppError>,
    body: Result<ApiJson<Value>, AppError>,
) -> E2bResult<StatusCode> {
    let SandboxPath(id) = id?;
    let ApiJson(body) = body?;
    let allow_internet_access = match body.get("allow_internet_access") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_bool().ok_or_else(|| {
            E2bError(WarrenError::invalid(
                "allow_internet_access must be a boolean",
            ))
        })?),
    };
    let current = state.sandboxes.get(&id).await?.network;
    let policy = to_policy(allow_internet_access, Some(&body), Some(&current))?.unwrap_or(current);
    state
        .secrets
        .check_injections(&caller, &caller.team, &policy)
        .await?;
    state
        .sandboxes
        .set_network(&id, policy, &AuditActor::from_caller(&caller))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(allow_internet: Option<bool>, network: Value) -> NetworkPolicy {
        to_policy(allow_internet, Some(&network), None)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn nothing_asked_takes_the_default() {
        assert_eq!(to_policy(None, None, None).unwrap(), None);
        assert_eq!(to_policy(None, Some(&Value::Null), None).unwrap(), None);
    }

    #[test]
    fn e2b_settings_map_onto_a_policy() {
        let open = policy(None, json!({}));
        assert_eq!(open.internet, Internet::Allow);
        let closed = policy(Some(false), json!({}));
        assert_eq!(closed.internet, Internet::Deny);
        let only = policy(
            None,
            json!({"denyOut": ["0.0.0.0/0", "203.0.113.0/24"], "allowOut": ["api.github.com", "198.51.100.0/24"]}),
        );
        assert_eq!(only.internet, Internet::Deny);
        assert!(only.decide_name("api.github.com").is_allowed());
        assert!(!only.decide_name("github.com").is_allowed());
        assert!(
            !only
                .decide_addr("203.0.113.9".parse().unwrap())
                .is_allowed()
        );
        assert!(
            only.decide_addr("198.51.100.9".parse().unwrap())
                .is_allowed()
        );
    }

    #[test]
    fn an_allowed_address_wins_over_a_wider_deny_as_on_e2b() {
        let p = policy(
            None,
            json!({"denyOut": ["203.0.113.0/24", "198.51.100.0/24"], "allowOut": ["203.0.113.7", "198.51.100.128/25"]}),
        );
        assert_eq!(p.internet, Internet::Allow);
        let allowed = |a: &str| p.decide_addr(a.parse().unwrap()).is_allowed();
        assert!(allowed("203.0.113.7"), "the allowed address");
        assert!(!allowed("203.0.113.6") && !allowed("203.0.113.8"));
        assert!(allowed("198.51.100.200") && !allowed("198.51.100.5"));
        assert!(allowed("192.0.2.1"), "outside every deny");
        let err = to_policy(None, Some(&json!({"denyOut": ["evil.example.com"]})), None)
            .unwrap_err()
            .0
            .message;
        assert!(err.contains("allow domains with allowOut"), "{err}");
    }

    #[test]
    fn what_warren_cannot_do_is_refused() {
        for bad in [
            json!({"rules": {"api.example.com": [{"transform": {"headers": {"X-Fixed": "v"}}}]}}),
            json!({"rules": {"api.example.com": [{"match": {}}]}}),
            json!({"rules": {"api.example.com": {"transform": {}}}}),
            json!({"rules": {"*.example.com": [{"transform": {"headers": {"A": "${e2b.secrets.k}"}}}]}}),
            json!({"maskRequestHost": "evil.example.com\r\nX-Injected: 1"}),
            json!({"maskRequestHost": 8080}),
            json!({"denyOut": ["not a cidr"]}),
            json!({"allowOut": "github.com"}),
            json!([]),
        ] {
            assert!(to_policy(None, Some(&bad), None).is_err(), "{bad}");
        }
        assert!(to_policy(None, Some(&json!({"rules": {}, "dnsServers": []})), None).is_ok());
    }

    #[test]
    fn a_masked_request_host_is_the_policys_request_host() {
        let p = policy(None, json!({"maskRequestHost": "localhost:${PORT}"}));
        assert_eq!(p.request_host_for(3000).as_deref(), Some("localhost:3000"));
        // An update that does not name it keeps it; an empty one clears it.
        let kept = to_policy(None, Some(&json!({"allowOut": []})), Some(&p))
            .unwrap()
            .unwrap();
        assert_eq!(kept.request_host, p.request_host);
        let cleared = to_policy(None, Some(&json!({"maskRequestHost": ""})), Some(&p))
            .unwrap()
            .unwrap();
        assert_eq!(cleared.request_host, None);
    }

    #[test]
    fn header_transforms_naming_a_secret_are_injections() {
        let p = policy(
            None,
            json!({"allowOut": ["api.openai.com"], "rules": {"api.openai.com": [
                {"transform": {"headers": {"Authorization": "Bearer ${e2b.secrets.openai}"}}}
            ]}}),
        );
        assert_eq!(p.inject.len(), 1);
        let inj = &p.inject[0];
        assert_eq!(
            (inj.host.as_str(), inj.header.as_str(), inj.secret.as_str()),
            ("api.openai.com", "Authorization", "openai")
        );
        assert_eq!(inj.header_value("sk"), "Bearer sk");
        // An update with rules replaces the injections; without, keeps them.
        let kept = to_policy(None, Some(&json!({"allowOut": []})), Some(&p))
            .unwrap()
            .unwrap();
        assert_eq!(kept.inject, p.inject);
        let cleared = to_policy(None, Some(&json!({"rules": {}})), Some(&p))
            .unwrap()
            .unwrap();
        assert!(cleared.inject.is_empty());
    }

    #[test]
    fn allow_public_traffic_opens_every_port_or_none() {
        let public = policy(None, json!({"allowPublicTraffic": true}));
        assert!(public.is_public(8080) && public.is_public(3000));
        let base = NetworkPolicy {
            public_ports: vec![8080],
            ..NetworkPolicy::default()
        };
        let private = to_policy(
            None,
            Some(&json!({"allowPublicTraffic": false})),
            Some(&base),
        )
        .unwrap()
        .unwrap();
        assert!(!private.is_public(8080));
        // Left out, the base's ports stay as they were.
        let kept = to_policy(None, Some(&json!({"allowOut": []})), Some(&public))
            .unwrap()
            .unwrap();
        assert!(kept.all_ports_public);
        let kept = to_policy(Some(false), None, Some(&base)).unwrap().unwrap();
        assert_eq!(kept.public_ports, vec![8080]);
        assert!(to_policy(None, Some(&json!({"allowPublicTraffic": "yes"})), None).is_err());
    }

    #[test]
    fn an_update_keeps_what_e2b_cannot_say() {
        let base = NetworkPolicy {
            public_ports: vec![8080],
            ..NetworkPolicy::default()
        };
        let p = to_policy(
            None,
            Some(&json!({"allowOut": ["github.com"]})),
            Some(&base),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.public_ports, vec![8080]);
        assert_eq!(p.allow.len(), 1);
    }
}
