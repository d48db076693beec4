//! The nftables table of one runtime instance.
//!
//! Every runtime (one per state directory) owns exactly one `inet` table,
//! named after a hash of its state directory, so several daemons and test
//! runs on one host never touch each other's rules; we only ever create,
//! replace or delete our own table, never list others. Rules match the
//! runtime's own pool as source, so one runtime's table neither depends on
//! nor interferes with another's; sandboxes cannot forge another source
//! address because every host veth has strict reverse-path filtering (see
//! `link`). Hooks run at priority `filter - 10`, before a distribution's own
//! filter tables:
//!
//! - forward: drop pool → any sandbox veth (`wv*`, also of other runtimes),
//!   pool → link-local/cloud metadata (169.254.0.0/16), and any IPv6 from a
//!   sandbox veth;
//! - input: from the pool accept only replies to connections the host
//!   opened (the daemon dials the agent) and new connections to the
//!   daemon's sandbox API port, if one is set, and drop everything else, so
//!   the host's other services are unreachable; the sandbox API port takes
//!   no connection that does not come from a sandbox veth;
//! - postrouting: masquerade the pool towards the outside.
//!
//! Installation is one atomic `nft -f` transaction that replaces the table,
//! so it is idempotent and safe while sandboxes run.

use std::path::Path;

use crate::cmd::{run_script, run_script_blocking};
use crate::error::NetError;
use crate::names::VETH_PREFIX;
use crate::pool::AddressPool;

/// One runtime instance's nftables table.
#[derive(Debug, Clone)]
pub struct Firewall {
    table: String,
    pool: AddressPool,
    sandbox_api_port: Option<u16>,
}

impl Firewall {
    /// The table for the runtime whose state lives in `state_dir`.
    pub fn new(state_dir: &Path, pool: AddressPool) -> Self {
        Self {
            table: format!(
                "warren_{:016x}",
                fnv1a(state_dir.as_os_str().as_encoded_bytes())
            ),
            pool,
            sandbox_api_port: None,
        }
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
        let sb = format!("\"{VETH_PREFIX}*\"");
        let api = match self.sandbox_api_port {
            Some(port) => format!(
                "iifname {sb} ip saddr {pool} tcp dport {port} accept
    iifname != {sb} tcp dport {port} drop
    "
            ),
            None => String::new(),
        };
        format!(
            "table inet {t} {{}}
delete table inet {t}
table inet {t} {{
  chain forward {{
    type filter hook forward priority filter - 10; policy accept;
    iifname {sb} ip saddr {pool} oifname {sb} drop
    iifname {sb} ip saddr {pool} ip daddr 169.254.0.0/16 drop
    iifname {sb} meta nfproto ipv6 drop
  }}
  chain input {{
    type filter hook input priority filter - 10; policy accept;
    iifname {sb} ip saddr {pool} ct state established,related accept
    {api}iifname {sb} ip saddr {pool} drop
    iifname {sb} meta nfproto ipv6 drop
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {pool} ip daddr != {pool} oifname != {sb} masquerade
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
    }

    #[test]
    fn ruleset_names_the_pool() {
        let pool = "10.88.0.0/20".parse().unwrap();
        let fw = Firewall::new(Path::new("/x"), pool);
        let rules = fw.ruleset();
        assert!(rules.contains("ip saddr 10.88.0.0/20 ip daddr != 10.88.0.0/20"));
        assert!(rules.contains("169.254.0.0/16 drop"));
        assert!(!rules.contains("dport"));
    }

    #[test]
    fn the_sandbox_api_port_is_opened_before_the_pool_is_dropped() {
        let pool = "10.88.0.0/20".parse().unwrap();
        let rules = Firewall::new(Path::new("/x"), pool)
            .with_sandbox_api_port(8701)
            .ruleset();
        let accept = rules
            .find("ip saddr 10.88.0.0/20 tcp dport 8701 accept")
            .expect("accept rule");
        let outside = rules
            .find("iifname != \"wv*\" tcp dport 8701 drop")
            .expect("outside drop");
        let drop = rules.find("ip saddr 10.88.0.0/20 drop").expect("pool drop");
        assert!(accept < drop && outside < drop, "{rules}");
    }

    #[test]
    fn root_ruleset_is_accepted_by_nft() {
        // `nft -c` only checks the script against the kernel; nothing changes.
        let fw = Firewall::new(Path::new("/x"), "10.88.0.0/20".parse().unwrap());
        for script in [fw.ruleset(), fw.removal()] {
            run_script_blocking("checking rules", "nft", &["-c", "-f", "-"], &script).unwrap();
        }
    }
}
