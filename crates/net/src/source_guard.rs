//! Every firewall rule, the resolver and the egress proxy identify a
//! sandbox by the source address of its packets; this makes that address
//! a fact rather than a claim. Two independent layers on the host end of
//! each sandbox's veth:
//!
//! - strict reverse-path filtering (`net.ipv4.conf.<veth>.rp_filter = 1`),
//!   set when the veth is made and again before every start: the kernel
//!   drops a packet whose source is not routed back through the veth it
//!   came in on, i.e. anything outside the veth's /30. The kernel applies
//!   the larger of the `all` and the interface value, so a host with
//!   `all.rp_filter = 2` (loose) gets loose filtering, which the daemon
//!   reports in a warning;
//! - an nftables table of its own per veth, family `netdev`, named
//!   `warren_src_<veth>`, whose chain on the veth's ingress hook (priority
//!   -500, before conntrack, NAT and every `inet` chain) drops every IPv4
//!   packet whose source is not the sandbox's address (counted), and all
//!   IPv6 (sandboxes have none). It pairs the interface with the one
//!   address explicitly, so it covers what reverse-path filtering lets
//!   through (the /30's other addresses) and holds however routes change;
//!   and as it hooks the device itself, it covers traffic to the host's
//!   own listeners (resolver, proxy, sandbox API) as much as forwarded
//!   traffic.
//!
//! The table is (re)made before every start ([`crate::link::configure_inside`],
//! one atomic `nft -f`), so a sandbox never runs without it, and deleted
//! with the veth: a netdev table outlives its device otherwise. It is not
//! part of the daemon's `inet` table, so replacing that table at start-up
//! leaves running sandboxes guarded.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cmd::run_script;
use crate::error::NetError;
use crate::names::SandboxNames;

/// The netdev table guarding `veth`.
pub fn table_name(veth: &str) -> String {
    format!("warren_src_{veth}")
}

/// The script that creates or replaces the guard of `veth` for `addr`.
fn script(veth: &str, addr: Ipv4Addr) -> String {
    let t = table_name(veth);
    format!(
        "table netdev {t} {{}}
delete table netdev {t}
table netdev {t} {{
  chain ingress {{
    type filter hook ingress device \"{veth}\" priority -500; policy accept;
    ip saddr != {addr} counter drop
    meta protocol ip6 drop
  }}
}}
"
    )
}

/// Creates or replaces the guard of the sandbox's veth.
pub(crate) async fn apply(names: &SandboxNames, addr: Ipv4Addr) -> Result<(), NetError> {
    run_script(
        "pairing the sandbox's veth with its address",
        "nft",
        &["-f", "-"],
        &script(&names.host_veth, addr),
    )
    .await
}

/// Deletes the guard of the sandbox's veth; succeeds when it is absent.
pub(crate) async fn remove(names: &SandboxNames) -> Result<(), NetError> {
    let t = table_name(&names.host_veth);
    run_script(
        "removing the sandbox veth's address guard",
        "nft",
        &["-f", "-"],
        &format!("table netdev {t} {{}}\ndelete table netdev {t}\n"),
    )
    .await
}

/// Turns on strict reverse-path filtering on `veth` (host end).
pub(crate) fn strict_rp_filter(veth: &str) -> Result<(), NetError> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let path = format!("/proc/sys/net/ipv4/conf/{veth}/rp_filter");
    std::fs::write(&path, "1\n")
        .map_err(|e| NetError::io(format!("enabling reverse-path filtering on {veth}"), e))?;
    let all = std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/rp_filter").unwrap_or_default();
    if all.trim() == "2" && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "net.ipv4.conf.all.rp_filter is 2 (loose), so sandbox veths get loose reverse-path filtering; their source addresses stay enforced by nftables"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_names_the_device_and_only_its_address() {
        let s = script("wvabc", Ipv4Addr::new(10, 77, 0, 6));
        assert!(s.contains("table netdev warren_src_wvabc {\n"));
        assert!(s.contains("hook ingress device \"wvabc\" priority -500"));
        assert!(s.contains("ip saddr != 10.77.0.6 counter drop"));
        assert!(s.starts_with("table netdev warren_src_wvabc {}\ndelete table"));
    }

    #[test]
    fn root_guard_script_is_accepted_by_nft() {
        // `nft -c` checks against the kernel; the device must exist.
        let veth = "wvguardcheck";
        let _ = std::process::Command::new("ip")
            .args(["link", "del", veth])
            .output();
        let made = std::process::Command::new("ip")
            .args([
                "link",
                "add",
                veth,
                "type",
                "veth",
                "peer",
                "name",
                "wvguardpeer",
            ])
            .status()
            .unwrap();
        assert!(made.success());
        let checked = crate::cmd::run_script_blocking(
            "checking the guard",
            "nft",
            &["-c", "-f", "-"],
            &script(veth, Ipv4Addr::new(10, 77, 0, 6)),
        );
        let _ = std::process::Command::new("ip")
            .args(["link", "del", veth])
            .output();
        checked.unwrap();
    }
}
