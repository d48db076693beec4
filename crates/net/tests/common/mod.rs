//! A sandbox's network the way the runtime makes it (`link::create` and
//! `link::configure_inside`: namespace, veth pair, addresses, default
//! route), with a way to run a Python script inside its namespace. Removed
//! on drop, also when a test fails.

#![allow(dead_code)]

use std::process::Command;

use warren_core::SandboxId;
use warren_net::link;
use warren_net::{AddressPool, NetworkAttachment, SandboxNames, SlotAddrs};

pub struct TestSandbox {
    pub names: SandboxNames,
    pub addrs: SlotAddrs,
}

impl TestSandbox {
    pub async fn create(pool: AddressPool, slot: u32) -> Self {
        let id = SandboxId::generate();
        let net = NetworkAttachment::new(&pool, &id, slot).unwrap();
        let names = SandboxNames::new(&id, &net.host_iface);
        let addrs = pool.slot(slot).unwrap();
        let me = Self { names, addrs };
        link::create(&me.names, &net).await.unwrap();
        link::configure_inside(&me.names, &net).await.unwrap();
        me
    }

    /// Runs `python3 -c script args…` inside the namespace; its stdout.
    pub async fn python(&self, script: &str, args: &[&str]) -> String {
        let out = tokio::process::Command::new("ip")
            .args(["netns", "exec", &self.names.netns, "python3", "-c", script])
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "python in the sandbox failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `ip args…` inside the namespace.
    pub fn ip(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(["-n", &self.names.netns])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TestSandbox {
    fn drop(&mut self) {
        let guard = warren_net::source_guard_table(&self.names.host_veth);
        let _ = Command::new("nft")
            .args(["delete", "table", "netdev", &guard])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.names.host_veth])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.names.netns])
            .output();
    }
}

/// Removes a firewall table when dropped, also when a test fails (a
/// leftover table would drop the next run's traffic from its pool).
pub struct TableGuard(pub warren_net::Firewall);

impl Drop for TableGuard {
    fn drop(&mut self) {
        let _ = self.0.remove_blocking();
    }
}

/// A route that makes an address fail at once (so a test never sends a
/// packet off this machine); removed on drop.
pub struct Unreachable(pub std::net::Ipv4Addr);

impl Unreachable {
    pub fn add(addr: std::net::Ipv4Addr) -> Self {
        let _ = Command::new("ip")
            .args(["route", "del", &format!("{addr}/32")])
            .output();
        let out = Command::new("ip")
            .args(["route", "add", "unreachable", &format!("{addr}/32")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(addr)
    }
}

impl Drop for Unreachable {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["route", "del", &format!("{}/32", self.0)])
            .output();
    }
}
