//! Reading the per-sandbox byte counters of the daemon's table (see
//! `firewall`): one `nft -j list counters` for all sandboxes.
//!
//! Counters live as long as a sandbox's chain: from the first policy
//! applied to it in its slot to its teardown, and no longer than the table
//! (the daemon replaces it at start, so after a restart they count again
//! from zero).

use std::collections::HashMap;
use std::process::Stdio;

use tokio::process::Command;

use crate::error::NetError;
use crate::firewall::Firewall;

/// Bytes one sandbox exchanged with the world beyond the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub sent_bytes: u64,
    pub received_bytes: u64,
}

impl Firewall {
    /// Every sandbox's counters, by network slot.
    pub async fn traffic(&self) -> Result<HashMap<u32, Traffic>, NetError> {
        const OP: &str = "reading the sandboxes' traffic counters";
        let out = Command::new("nft")
            .args(["-j", "list", "counters", "table", "inet", self.table()])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| NetError::io(format!("{OP}: running nft"), e))?;
        if !out.status.success() {
            return Err(NetError::Command {
                op: OP.to_owned(),
                detail: format!(
                    "nft exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        parse_counters(&out.stdout).map_err(|detail| NetError::Command {
            op: OP.to_owned(),
            detail,
        })
    }
}

/// The `s<slot>_sent` / `s<slot>_received` counters in nft's JSON listing;
/// other objects are ignored.
fn parse_counters(json: &[u8]) -> Result<HashMap<u32, Traffic>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("nft printed no JSON: {e}"))?;
    let items = doc
        .get("nftables")
        .and_then(|v| v.as_array())
        .ok_or("nft's JSON has no `nftables` list")?;
    let mut by_slot: HashMap<u32, Traffic> = HashMap::new();
    for counter in items.iter().filter_map(|i| i.get("counter")) {
        let Some(name) = counter.get("name").and_then(|n| n.as_str()) else {
            continue;
        };
        let Some((slot, way)) = name.strip_prefix('s').and_then(|rest| rest.split_once('_')) else {
            continue;
        };
        let Ok(slot) = slot.parse::<u32>() else {
            continue;
        };
        let bytes = counter.get("bytes").and_then(|b| b.as_u64()).unwrap_or(0);
        let entry = by_slot.entry(slot).or_default();
        match way {
            "sent" => entry.sent_bytes = bytes,
            "received" => entry.received_bytes = bytes,
            _ => {}
        }
    }
    Ok(by_slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_slot_and_other_objects_ignored() {
        let json = br#"{"nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"counter": {"family": "inet", "name": "s3_sent", "table": "t", "handle": 9, "packets": 4, "bytes": 400}},
            {"counter": {"family": "inet", "name": "s3_received", "table": "t", "handle": 10, "packets": 2, "bytes": 9000}},
            {"counter": {"family": "inet", "name": "s12_sent", "table": "t", "handle": 11, "packets": 0, "bytes": 0}},
            {"counter": {"family": "inet", "name": "other", "table": "t", "handle": 12, "packets": 1, "bytes": 1}},
            {"limit": {"family": "inet", "name": "s3_log", "table": "t"}}
        ]}"#;
        let got = parse_counters(json).unwrap();
        assert_eq!(
            got[&3],
            Traffic {
                sent_bytes: 400,
                received_bytes: 9000
            }
        );
        assert_eq!(got[&12], Traffic::default());
        assert_eq!(got.len(), 2);
        assert!(parse_counters(b"not json").is_err());
    }
}
