//! One sandbox's chain and sets in the daemon's table.
//!
//! For the sandbox in slot `n` (source address `a`):
//! - set `s<n>_deny` and `s<n>_allow` (interval): the IPv4 CIDRs of the
//!   policy's `deny` and `allow` lists;
//! - set `s<n>_dns` (timeout): addresses the resolver returned for allowed
//!   names, each expiring with its record's TTL;
//! - chain `s<n>`: deny set → drop, allow set → accept, private ranges →
//!   drop, resolver set → accept, then accept (`internet: allow`) or drop;
//!   before each verdict a rule with the same match logs a new non-TCP
//!   flow with that verdict to the table's NFLOG group (see
//!   warren-egress's `nflog`), within the sandbox's limit `s<n>_log`, so
//!   one sandbox's flood neither floods the daemon nor silences another
//!   sandbox's events;
//! - element `a : jump s<n>` of the `sandboxes` verdict map, which the
//!   forward chain consults for every new flow from the pool;
//! - counters `s<n>_sent` and `s<n>_received` and their elements in the
//!   `meter_sent`/`meter_received` maps (see `meter`). Applying a policy
//!   again keeps their values: they count for the sandbox's whole life in
//!   its slot and go with its chain.
//!
//! The order of the chain is the order of `NetworkPolicy::decide_resolved`
//! and `decide_addr`: deny wins, an allow CIDR opens private ranges, a name
//! never does. Each operation is one `nft -f` transaction of its own, so a
//! policy update replaces the sandbox's rules atomically and never touches
//! another sandbox's. IPv6 from sandboxes is dropped before any of this.

use std::fmt::Write;
use std::net::Ipv4Addr;
use std::time::Duration;

use warren_core::network::{DenyReason, Internet, NetworkPolicy, Verdict};

use crate::cmd::run_script;
use crate::error::NetError;
use crate::firewall::{Firewall, LOG_RATE};

/// Shortest and longest time a resolved address stays in a sandbox's set.
pub const MIN_RESOLVED_TTL: Duration = Duration::from_secs(30);
pub const MAX_RESOLVED_TTL: Duration = Duration::from_secs(3600);

impl Firewall {
    /// Creates or replaces the rules of the sandbox at `addr` (slot `slot`)
    /// for `policy`; forgets the addresses the resolver added before.
    pub async fn apply_sandbox(
        &self,
        slot: u32,
        addr: Ipv4Addr,
        policy: &NetworkPolicy,
    ) -> Result<(), NetError> {
        run_script(
            "applying a sandbox's network policy",
            "nft",
            &["-f", "-"],
            &self.sandbox_script(slot, addr, policy),
        )
        .await
    }

    /// Removes the sandbox's chain and sets; succeeds when they are absent.
    /// Run it while the table exists (before the daemon removes the table
    /// at stop): the declarations it starts with would create an absent
    /// table again.
    pub async fn remove_sandbox(&self, slot: u32, addr: Ipv4Addr) -> Result<(), NetError> {
        run_script(
            "removing a sandbox's network rules",
            "nft",
            &["-f", "-"],
            &self.sandbox_removal(slot, addr),
        )
        .await
    }

    /// Lets the sandbox in `slot` reach `addrs` (resolved for an allowed
    /// name) for `ttl`, clamped to [`MIN_RESOLVED_TTL`]..[`MAX_RESOLVED_TTL`].
    pub async fn add_resolved(
        &self,
        slot: u32,
        addrs: &[Ipv4Addr],
        ttl: Duration,
    ) -> Result<(), NetError> {
        if addrs.is_empty() {
            return Ok(());
        }
        run_script(
            "adding resolved addresses",
            "nft",
            &["-f", "-"],
            &self.resolved_script(slot, addrs, ttl),
        )
        .await
    }

    fn sandbox_script(&self, slot: u32, addr: Ipv4Addr, policy: &NetworkPolicy) -> String {
        let t = self.table();
        let c = format!("s{slot}");
        let mut s = format!(
            "table inet {t} {{
  set {c}_deny {{ type ipv4_addr; flags interval; auto-merge; }}
  set {c}_allow {{ type ipv4_addr; flags interval; auto-merge; }}
  set {c}_dns {{ type ipv4_addr; flags timeout; }}
  limit {c}_log {{ {LOG_RATE} }}
  counter {c}_sent {{}}
  counter {c}_received {{}}
  chain {c} {{}}
}}
flush chain inet {t} {c}
flush set inet {t} {c}_deny
flush set inet {t} {c}_allow
flush set inet {t} {c}_dns
"
        );
        for (list, rules) in [("deny", &policy.deny), ("allow", &policy.allow)] {
            let cidrs: Vec<String> = NetworkPolicy::cidrs(rules)
                .filter(|c| c.is_ipv4())
                .map(ToString::to_string)
                .collect();
            if !cidrs.is_empty() {
                let _ = writeln!(
                    s,
                    "add element inet {t} {c}_{list} {{ {} }}",
                    cidrs.join(", ")
                );
            }
        }
        let last = match policy.internet {
            Internet::Allow => Verdict::Allow,
            Internet::Deny => Verdict::Deny(DenyReason::NotAllowed),
        };
        let decisions = [
            (
                format!("ip daddr @{c}_deny "),
                Verdict::Deny(DenyReason::DeniedByRule),
            ),
            (format!("ip daddr @{c}_allow "), Verdict::Allow),
            (
                "ip daddr @private4 ".to_owned(),
                Verdict::Deny(DenyReason::Private),
            ),
            (format!("ip daddr @{c}_dns "), Verdict::Allow),
            (String::new(), last),
        ];
        let limit = format!("{c}_log");
        for (matches, verdict) in decisions {
            let action = if verdict.is_allowed() {
                "accept"
            } else {
                "drop"
            };
            let log = self.log_new_flow(&limit, verdict);
            let _ = write!(
                s,
                "add rule inet {t} {c} {matches}{log}\nadd rule inet {t} {c} {matches}{action}\n"
            );
        }
        let _ = writeln!(s, "add element inet {t} sandboxes {{ {addr} : jump {c} }}");
        for way in ["sent", "received"] {
            let _ = writeln!(
                s,
                "add element inet {t} meter_{way} {{ {addr} : \"{c}_{way}\" }}"
            );
        }
        s
    }

    fn sandbox_removal(&self, slot: u32, addr: Ipv4Addr) -> String {
        let t = self.table();
        let c = format!("s{slot}");
        // Declaring each object first makes every delete succeed when it
        // is absent; the map element goes before the chain it jumps to.
        let mut s = format!(
            "table inet {t} {{
  map sandboxes {{ type ipv4_addr : verdict; }}
  chain {c} {{}}
}}
add element inet {t} sandboxes {{ {addr} : jump {c} }}
delete element inet {t} sandboxes {{ {addr} }}
delete chain inet {t} {c}
"
        );
        for set in ["deny", "allow", "dns"] {
            let kind = if set == "dns" {
                "flags timeout;"
            } else {
                "flags interval;"
            };
            let _ = write!(
                s,
                "add set inet {t} {c}_{set} {{ type ipv4_addr; {kind} }}\ndelete set inet {t} {c}_{set}\n"
            );
        }
        let _ = write!(
            s,
            "add limit inet {t} {c}_log {{ {LOG_RATE} }}\ndelete limit inet {t} {c}_log\n"
        );
        // The map element refers to the counter: it goes first.
        for way in ["sent", "received"] {
            let _ = write!(
                s,
                "add map inet {t} meter_{way} {{ type ipv4_addr : counter; }}
add counter inet {t} {c}_{way}
add element inet {t} meter_{way} {{ {addr} : \"{c}_{way}\" }}
delete element inet {t} meter_{way} {{ {addr} }}
delete counter inet {t} {c}_{way}
"
            );
        }
        s
    }

    pub(crate) fn resolved_script(&self, slot: u32, addrs: &[Ipv4Addr], ttl: Duration) -> String {
        let t = self.table();
        let set = format!("s{slot}_dns");
        let secs = ttl.clamp(MIN_RESOLVED_TTL, MAX_RESOLVED_TTL).as_secs();
        let list = |suffix: &str| {
            addrs
                .iter()
                .map(|a| format!("{a}{suffix}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // `add` keeps an existing element's old timeout: add, delete and
        // add again, so the set holds each address with the new TTL.
        format!(
            "add element inet {t} {set} {{ {} }}
delete element inet {t} {set} {{ {} }}
add element inet {t} {set} {{ {} }}
",
            list(" timeout 1s"),
            list(""),
            list(&format!(" timeout {secs}s"))
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn policy(json: &str) -> NetworkPolicy {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn chain_order_follows_the_policy_decisions() {
        let fw = Firewall::new(Path::new("/x"), "10.88.0.0/20".parse().unwrap());
        let p = policy(
            r#"{"internet":"allow","allow":["198.18.0.0/15","a.example.com","2001:db8::/32"],"deny":["198.18.0.7"]}"#,
        );
        let s = fw.sandbox_script(3, Ipv4Addr::new(10, 88, 0, 14), &p);
        assert!(s.contains("add element inet warren_"));
        assert!(s.contains("s3_allow { 198.18.0.0/15 }"), "{s}");
        assert!(s.contains("s3_deny { 198.18.0.7/32 }"), "{s}");
        assert!(
            !s.contains("2001:db8"),
            "IPv6 rules are not for the IPv4 sets"
        );
        let order = [
            "@s3_deny drop",
            "@s3_allow accept",
            "@private4 drop",
            "@s3_dns accept",
            "s3 accept\n",
            "10.88.0.14 : jump s3",
        ];
        let at: Vec<usize> = order.iter().map(|o| s.find(o).expect(o)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{s}");
        // Each verdict is logged, for new non-TCP flows, by the rule just
        // before it, with the same match.
        let rules: Vec<&str> = s.lines().filter(|l| l.starts_with("add rule")).collect();
        let group = fw.log_group();
        for (pair, prefix) in rules.chunks(2).zip([
            "deny denied_by_rule",
            "allow",
            "deny private_range",
            "allow",
            "allow",
        ]) {
            let (log, verdict) = (pair[0], pair[1]);
            let matches = verdict.rsplit_once(' ').unwrap().0;
            assert!(log.starts_with(matches), "{log} / {verdict}");
            assert!(
                log.ends_with(&format!(
                    "meta l4proto != tcp ct state new limit name \"s3_log\" log prefix \"{prefix}\" group {group}"
                )),
                "{log}"
            );
        }
        let closed = fw.sandbox_script(3, Ipv4Addr::new(10, 88, 0, 14), &policy("{}"));
        assert!(closed.contains("s3 drop\n"));
        assert!(closed.contains("log prefix \"deny not_allowed\""));
        assert_eq!(
            closed.matches("add element").count(),
            3,
            "only the verdict map's and the two meters' entries"
        );
    }

    #[test]
    fn resolved_ttls_are_clamped() {
        let fw = Firewall::new(Path::new("/x"), "10.88.0.0/20".parse().unwrap());
        let a = [Ipv4Addr::new(198, 18, 0, 2)];
        assert!(
            fw.resolved_script(0, &a, Duration::from_secs(1))
                .contains("198.18.0.2 timeout 30s")
        );
        assert!(
            fw.resolved_script(0, &a, Duration::from_secs(86400))
                .contains("198.18.0.2 timeout 3600s")
        );
    }

    #[test]
    fn root_sandbox_rules_apply_update_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let fw = Firewall::new(dir.path(), "10.89.0.0/24".parse().unwrap());
        fw.install_blocking().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let addr = Ipv4Addr::new(10, 89, 0, 6);
        let listed = || {
            let out = std::process::Command::new("nft")
                .args(["list", "table", "inet", fw.table()])
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        rt.block_on(async {
            let open = policy(r#"{"allow":["198.18.0.0/24"]}"#);
            fw.apply_sandbox(1, addr, &open).await.unwrap();
            fw.add_resolved(1, &[Ipv4Addr::new(198, 19, 0, 9)], Duration::from_secs(60))
                .await
                .unwrap();
            fw.add_resolved(1, &[Ipv4Addr::new(198, 19, 0, 9)], Duration::from_secs(90))
                .await
                .unwrap();
            let table = listed();
            assert!(table.contains("10.89.0.6 : jump s1"), "{table}");
            assert!(table.contains("10.89.0.6 : \"s1_sent\""), "{table}");
            assert_eq!(fw.traffic().await.unwrap()[&1], crate::Traffic::default());
            assert!(table.contains("198.19.0.9 timeout 1m30s"), "{table}");
            // An update replaces the CIDRs and forgets resolved addresses.
            let other = policy(r#"{"allow":["203.0.113.0/24"]}"#);
            fw.apply_sandbox(1, addr, &other).await.unwrap();
            let table = listed();
            assert!(table.contains("203.0.113.0/24") && !table.contains("198.18.0.0/24"));
            assert!(!table.contains("198.19.0.9"));
            fw.remove_sandbox(1, addr).await.unwrap();
            fw.remove_sandbox(1, addr).await.unwrap();
            let table = listed();
            assert!(!table.contains("s1"), "{table}");
            assert!(!fw.traffic().await.unwrap().contains_key(&1));
        });
        fw.remove_blocking().unwrap();
    }
}
