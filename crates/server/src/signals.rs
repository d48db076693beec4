//! Counters the services keep as things happen, for `GET /metrics`
//! (`crate::metrics` registers them). Every label is drawn from a small
//! fixed set: no sandbox, team or host name ever becomes a label here.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use warren_core::network::Verdict;
use warren_egress::egress::{NetEvent, NetEventKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    kind: &'static str,
    verdict: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RelayLabels {
    kind: &'static str,
    direction: &'static str,
}

/// The resolver's and the egress proxy's decisions and the bytes they
/// relayed.
#[derive(Clone, Default)]
pub struct Signals {
    decisions: Family<DecisionLabels, Counter>,
    relayed: Family<RelayLabels, Counter>,
}

impl Signals {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "egress_decisions",
            "Network decisions about sandboxes' traffic (DNS queries, proxied connections, packet flows) by kind, verdict and reason",
            self.decisions.clone(),
        );
        registry.register(
            "egress_relayed_bytes",
            "Payload bytes the resolver and the egress proxy relayed for sandboxes, by kind and direction",
            self.relayed.clone(),
        );
    }

    /// Counts one decision of the resolver, the proxy or the packet log.
    pub fn net_event(&self, e: &NetEvent) {
        let reason = match e.verdict {
            Verdict::Allow => "",
            Verdict::Deny(r) => r.as_str(),
        };
        self.decisions
            .get_or_create(&DecisionLabels {
                kind: e.kind.as_str(),
                verdict: e.verdict.as_str(),
                reason,
            })
            .inc();
        if e.kind == NetEventKind::Packet {
            return;
        }
        for (direction, bytes) in [("sent", e.bytes_out), ("received", e.bytes_in)] {
            if bytes > 0 {
                self.relayed
                    .get_or_create(&RelayLabels {
                        kind: e.kind.as_str(),
                        direction,
                    })
                    .inc_by(bytes);
            }
        }
    }
}
