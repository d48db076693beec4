//! What happens to a sandbox between two samples that no counter on the
//! host keeps: bytes it sent through the egress proxy (the firewall's
//! counters only see forwarded packets), the connections and queries its
//! policy refused, and its forks. The network event drain and the fork
//! path add to it; each sample takes what gathered.
//!
//! A proxied connection's bytes are known when it closes, so a long
//! connection is counted in the interval it ends in. The log holds at most
//! [`MAX_SANDBOXES`] sandboxes (it is only emptied by samples, which do not
//! run while metering is off).

use std::collections::HashMap;
use std::sync::Mutex;

use warren_core::SandboxId;

/// Most sandboxes the log keeps activity of between samples.
pub const MAX_SANDBOXES: usize = 65_536;

/// One sandbox's activity since the last sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// Payload bytes it sent through the egress proxy.
    pub proxied_sent: u64,
    pub denials: u64,
    pub forks: u64,
}

/// Activity gathered per sandbox.
#[derive(Default)]
pub struct ActivityLog(Mutex<HashMap<SandboxId, Activity>>);

impl ActivityLog {
    fn with(&self, id: &SandboxId, f: impl FnOnce(&mut Activity)) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = map.get_mut(id) {
            f(a);
        } else if map.len() < MAX_SANDBOXES {
            f(map.entry(id.clone()).or_default());
        }
    }

    pub fn proxied(&self, id: &SandboxId, bytes_out: u64) {
        if bytes_out > 0 {
            self.with(id, |a| {
                a.proxied_sent = a.proxied_sent.saturating_add(bytes_out)
            });
        }
    }

    pub fn denied(&self, id: &SandboxId) {
        self.with(id, |a| a.denials += 1);
    }

    /// `id` was forked into `branches` new sandboxes.
    pub fn forked(&self, id: &SandboxId, branches: u64) {
        self.with(id, |a| a.forks += branches);
    }

    /// Everything gathered since the last call.
    pub fn take(&self) -> HashMap<SandboxId, Activity> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
