//! The nftables table of one daemon.
//!
//! Every daemon (one per state directory) owns exactly one `inet` table,
//! named after a hash of its state directory, so several daemons and test
//! runs on one host never touch each other's rules; we only ever create,
//! replace or delete our own table, never list others. The daemon installs
//! it at start (replacing one a crashed daemon left) and removes it at stop
//! when no sandbox lives on; no runtime touches it. Sandbox traffic is
//! matched by what the network layer decided in each sandbox's
//! [`crate::NetworkAttachment`]: host interfaces named with
//! [`crate::HOST_IFACE_PREFIX`] and the daemon's own pool as source, so one
//! daemon's table neither depends on nor interferes with another's;
//! sandboxes cannot forge another source address because every attachment
//! guarantees its address (the namespace backend: strict reverse-path
//! filtering and an ingress guard on the host veth, see `source_guard`).
//! Hooks run at priority `filter - 10`, before a distribution's own filter
//! tables:
//!
//! - prerouting (nat), only with egress ports set: DNS (UDP and TCP port
//!   53, to any address) from the pool is redirected to the daemon's
//!   resolver port, every other TCP connection that is not for this host,
//!   the pool or link-local to the daemon's egress proxy port;
//! - forward: drop pool → any sandbox interface (`wv*`, also of other
//!   daemons),
//!   pool → link-local/cloud metadata (169.254.0.0/16) and the other
//!   always-blocked IPv4 ranges, and any IPv6 from a sandbox veth; accept
//!   replies; then the sandbox's own chain decides (the `sandboxes`
//!   verdict map, source address → `jump s<slot>`, see `sandbox_rules`),
//!   and a pool address without a chain is dropped: default deny, also
//!   between a (re)install of the table and the daemon applying policies.
//!   The always-blocked drops and every verdict of a sandbox chain first
//!   log the first packet of a new non-TCP flow to the table's NFLOG group
//!   (rate-limited; see `log_prefix` and warren-egress's `nflog`), so UDP
//!   and ICMP decisions are events too;
//! - input: from the pool accept only replies to connections the host
//!   opened (the daemon dials the agent) and new connections to the
//!   daemon's sandbox API, resolver and proxy ports, if set, and drop
//!   everything else, so the host's other services are unreachable; those
//!   ports take no connection from another machine (one that comes
//!   neither from a sandbox veth nor over loopback: the daemon listens on
//!   every address, and a rule for the port alone would also cut another
//!   local service that shares the number on a loopback address);
//! - postrouting: masquerade the pool towards the outside.
//! - metering (`meter`): every sandbox has two named counters, of the bytes
//!   it sent to and received from the world beyond the host. Sent: its
//!   packets forwarded out (postrouting, before masquerade); received:
//!   packets to it whose source is not in the pool (postrouting, after the
//!   proxy's replies got their original source back). The daemon's own connections with the sandbox (agent, sandbox
//!   API, ports) are between pool addresses and never counted. Maps from
//!   the sandbox's address to its counters select them; a packet the
//!   firewall drops is never counted.
//!
//! Installation is one atomic `nft -f` transaction that replaces the table,
//! so it is idempotent and safe while sandboxes run (their chains are gone
//! afterwards and must be applied again: fail closed).

use std::path::Path;

use warren_core::network::{DenyReason, Verdict};

use crate::attachment::HOST_IFACE_PREFIX;
use crate::cmd::{run_script, run_script_blocking};
use crate::error::NetError;
use crate::log_prefix;
use crate::pool::AddressPool;

/// One daemon's nftables table.
#[derive(Debug, Clone)]
pub struct Firewall {
    table: String,
    log_group: u16,
    pool: AddressPool,
    sandbox_api_port: Option<u16>,
    egress: Option<EgressPorts>,
}

/// The host ports of the daemon's per-sandbox resolver and egress proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressPorts {
    pub dns: u16,
    pub proxy: u16,
}

/// IPv4 ranges no sandbox reaches whatever its policy (see
/// `warren_core::network::always_blocked`).
const BLOCKED4: &str = "0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/3";
/// How many new-flow log entries a limit object (one per sandbox, one for
/// the always-blocked drops) lets through; the rest are not logged.
pub(crate) const LOG_RATE: &str = "rate 20/second burst 40 packets";

/// IPv4 private ranges (`warren_core::network::is_private`).
pub(crate) const PRIVATE4: &str = "10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.168.0.0/16";

impl Firewall {
    /// The table of the daemon whose state lives in `state_dir`.
    pub fn new(state_dir: &Path, pool: AddressPool) -> Self {
        let hash = fnv1a(state_dir.as_os_str().as_encoded_bytes());
        Self {
            table: format!("warren_{hash:016x}"),
            // Groups 32768-65535: loggers such as ulogd are set up with
            // small group numbers.
            log_group: 0x8000 | (hash >> 49) as u16,
            pool,
            sandbox_api_port: None,
            egress: None,
        }
    }

    /// Redirects sandboxes' DNS and TCP to the daemon's resolver and proxy
    /// ports and lets sandboxes reach those ports.
    pub fn with_egress_ports(mut self, ports: EgressPorts) -> Self {
        self.egress = Some(ports);
        self
    }

    /// The pool whose sandboxes this table filters.
    pub fn pool(&self) -> AddressPool {
        self.pool
    }

    /// Lets sandboxes open TCP connections to `port` on the host (the
    /// daemon's sandbox API), and nothing else from outside the pool.
    pub fn with_sandbox_api_port(mut self, port: u16) -> Self {
        self.sandbox_api_port = Some(port);
        self
    }

    /// The table's name (family `inet`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The NFLOG group the table's rules log new non-TCP flows to (see
    /// warren-egress's `nflog`); derived from the state directory, like the
    /// table's name.
    pub fn log_group(&self) -> u16 {
        self.log_group
    }

    /// A statement that logs the first packet of a new non-TCP flow with
    /// `verdict` to the table's group, within the named limit `limit`
    /// ([`LOG_RATE`]); put it before the rule that takes the verdict, with
    /// the same match.
    pub(crate) fn log_new_flow(&self, limit: &str, verdict: Verdict) -> String {
        format!(
            "meta l4proto != tcp ct state new limit name \"{limit}\" log prefix \"{}\" group {}",
            log_prefix::prefix(verdict),
            self.log_group
        )
    }

    /// Creates or replaces the table.
    pub async fn install(&self) -> Result<(), NetError> {
        run_script(
            "installing firewall rules",
            "nft",
            &["-f", "-"],
            &self.ruleset(),
        )
        .await
    }

    /// [`Self::install`] for start-up code outside an async context.
    pub fn install_blocking(&self) -> Result<(), NetError> {
        run_script_blocking(
            "installing firewall rules",
            "nft",
            &["-f", "-"],
            &self.ruleset(),
        )
    }

    /// Deletes the table; succeeds when it does not exist.
    pub async fn remove(&self) -> Result<(), NetError> {
        run_script(
            "removing firewall rules",
            "nft",
            &["-f", "-"],
            &self.removal(),
        )
        .await
    }

    /// [`Self::remove`] for `Drop` and shutdown code.
    pub fn remove_blocking(&self) -> Result<(), NetError> {
        run_script_blocking(
            "removing firewall rules",
            "nft",
            &["-f", "-"],
            &self.removal(),
        )
    }

    fn removal(&self) -> String {
        // Declaring an empty table first makes the delete succeed when the
        // table is absent.
        format!(
            "table inet {t} {{}}\ndelete table inet {t}\n",
            t = self.table
        )
    }

    /// The nft script that (re)creates the table.
    pub fn ruleset(&self) -> String {
        let t = &self.table;
        let pool = self.pool;
        let blocked_log =
            self.log_new_flow("blocked_log", Verdict::Deny(DenyReason::AlwaysBlocked));
        let sb = format!("\"{HOST_IFACE_PREFIX}*\"");
        let from_pool = format!("iifname {sb} ip saddr {pool}");
        // Traffic from other machines: neither a sandbox veth nor loopback
        // (the host's own processes, among them services that share a port
        // number on a loopback address).
        let from_outside = format!("iifname != {sb} iifname != \"lo\"");
        let mut open_ports = String::new();
        let mut closed_ports = String::new();
        if let Some(port) = self.sandbox_api_port {
            open_ports += &format!("{from_pool} tcp dport {port} accept\n    ");
            closed_ports += &format!("{from_outside} tcp dport {port} drop\n    ");
        }
        let mut prerouting = String::new();
        if let Some(EgressPorts { dns, proxy }) = self.egress {
            open_ports += &format!(
                "{from_pool} udp dport {dns} accept\n    {from_pool} tcp dport {{ {dns}, {proxy} }} accept\n    "
            );
            closed_ports += &format!(
                "{from_outside} udp dport {dns} drop\n    {from_outside} tcp dport {{ {dns}, {proxy} }} drop\n    "
            );
            prerouting = format!(
                "  chain prerouting {{
    type nat hook prerouting priority dstnat - 10; policy accept;
    {from_pool} udp dport 53 redirect to :{dns}
    {from_pool} tcp dport 53 redirect to :{dns}
    {from_pool} ip daddr != {{ {pool}, 169.254.0.0/16 }} fib daddr type != local meta l4proto tcp redirect to :{proxy}
  }}
"
            );
        }
        format!(
            "table inet {t} {{}}
delete table inet {t}
table inet {t} {{
  set private4 {{
    type ipv4_addr; flags interval;
    elements = {{ {PRIVATE4} }}
  }}
  map sandboxes {{
    type ipv4_addr : verdict;
  }}
  map meter_sent {{
    type ipv4_addr : counter;
  }}
  map meter_received {{
    type ipv4_addr : counter;
  }}
  limit blocked_log {{ {LOG_RATE} }}
{prerouting}  chain forward {{
    type filter hook forward priority filter - 10; policy accept;
    {from_pool} oifname {sb} {blocked_log}
    {from_pool} oifname {sb} drop
    {from_pool} ip daddr {{ {BLOCKED4} }} {blocked_log}
    {from_pool} ip daddr {{ {BLOCKED4} }} drop
    iifname {sb} meta nfproto ipv6 drop
    {from_pool} ct state established,related accept
    {from_pool} ip saddr vmap @sandboxes
    {from_pool} drop
  }}
  chain input {{
    type filter hook input priority filter - 10; policy accept;
    {from_pool} ct state established,related accept
    {open_ports}{closed_ports}{from_pool} drop
    iifname {sb} meta nfproto ipv6 drop
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {pool} ip daddr != {pool} oifname != {sb} masquerade
  }}
  chain meter_forwarded {{
    type filter hook postrouting priority srcnat - 10; policy accept;
    {from_pool} oifname != {sb} counter name ip saddr map @meter_sent
  }}
  chain meter_received {{
    type filter hook postrouting priority srcnat + 10; policy accept;
    oifname {sb} ip daddr {pool} ip saddr != {pool} counter name ip daddr map @meter_received
  }}
}}
"
        )
    }
}

/// Turns on IPv4 forwarding (host-wide; never turned off again, other
/// software may rely on it).
pub fn enable_ipv4_forwarding() -> Result<(), NetError> {
    const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
    match std::fs::read_to_string(PATH) {
        Ok(v) if v.trim() == "1" => Ok(()),
        _ => std::fs::write(PATH, "1\n")
            .map_err(|e| NetError::io("enabling IPv4 forwarding (is this running as root?)", e)),
    }
}

/// 64-bit FNV-1a: stable across Rust versions, unlike `DefaultHasher`, so a
/// newer daemon finds the table an older one made.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_differ_per_state_dir_and_are_stable() {
        let pool = "10.77.0.0/16".parse().unwrap();
        let a = Firewall::new(Path::new("/var/lib/warren/runtime"), pool);
        let b = Firewall::new(Path::new("/tmp/test/runtime"), pool);
        assert_ne!(a.table(), b.table());
        assert_eq!(
            a.table(),
            Firewall::new(Path::new("/var/lib/warren/runtime"), pool).table()
        );
        assert!(a.table().len() < 64);
        assert!(a.log_group() >= 0x8000 && b.log_group() >= 0x8000);
        assert_ne!(a.log_group(), b.log_group());
    }

    #[test]
    fn ruleset_names_the_pool() {
        let pool = "10.88.0.0/20".parse().unwrap();
        let fw = Firewall::new(Path::new("/x"), pool);
        let rules = fw.ruleset();
        assert!(rules.contains("ip saddr 10.88.0.0/20 ip daddr != 10.88.0.0/20"));
        assert!(rules.contains("169.254.0.0/16, 224.0.0.0/3 } drop"));
        assert!(rules.contains("ip saddr vmap @sandboxes"));
        assert!(!rules.contains("dport"));
    }

    #[test]
    fn the_sandbox_api_port_is_opened_before_the_pool_is_dropped() {
        let pool = "10.88.0.0/20".parse().unwrap();
        let rules = Firewall::new(Path::new("/x"), pool)
            .with_sandbox_api_port(8701)
            .ruleset();
        let rules = &rules[rules.find("chain input").unwrap()..];
        let accept = rules
            .find("ip saddr 10.88.0.0/20 tcp dport 8701 accept")
            .expect("accept rule");
        let outside = rules
            .find("iifname != \"wv*\" iifname != \"lo\" tcp dport 8701 drop")
            .expect("outside drop");
        let drop = rules.find("ip saddr 10.88.0.0/20 drop").expect("pool drop");
        assert!(accept < drop && outside < drop, "{rules}");
    }

    #[test]
    fn root_ruleset_is_accepted_by_nft() {
        // `nft -c` only checks the script against the kernel; nothing changes.
        let fw = Firewall::new(Path::new("/x"), "10.88.0.0/20".parse().unwrap());
        let egress = fw
            .clone()
            .with_sandbox_api_port(8701)
            .with_egress_ports(EgressPorts {
                dns: 8702,
                proxy: 8703,
            });
        for script in [fw.ruleset(), fw.removal(), egress.ruleset()] {
            run_script_blocking("checking rules", "nft", &["-c", "-f", "-"], &script).unwrap();
        }
    }
}
