//! The NFLOG prefix a firewall rule logs a new non-TCP flow with: the
//! verdict the rule takes, as text. The firewall writes it
//! ([`prefix`]); the packet log reader turns it back into the verdict
//! ([`verdict_of`]). The prefix is the only thing tying a logged packet
//! to a verdict, so both sides use these two functions.

use warren_core::network::{DenyReason, Verdict};

/// The log prefix for `verdict`, as the firewall's rules write it.
pub fn prefix(verdict: Verdict) -> String {
    match verdict {
        Verdict::Allow => "allow".to_owned(),
        Verdict::Deny(reason) => format!("deny {}", reason.as_str()),
    }
}

/// The verdict a log prefix names; `None` for a prefix no rule writes.
pub fn verdict_of(prefix: &str) -> Option<Verdict> {
    const REASONS: [DenyReason; 4] = [
        DenyReason::DeniedByRule,
        DenyReason::NotAllowed,
        DenyReason::Private,
        DenyReason::AlwaysBlocked,
    ];
    if prefix == "allow" {
        return Some(Verdict::Allow);
    }
    let reason = prefix.strip_prefix("deny ")?;
    REASONS
        .into_iter()
        .find(|r| r.as_str() == reason)
        .map(Verdict::Deny)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_the_rules_write_reads_back() {
        for v in [
            Verdict::Allow,
            Verdict::Deny(DenyReason::DeniedByRule),
            Verdict::Deny(DenyReason::NotAllowed),
            Verdict::Deny(DenyReason::Private),
            Verdict::Deny(DenyReason::AlwaysBlocked),
        ] {
            assert_eq!(verdict_of(&prefix(v)), Some(v));
        }
        for unknown in ["", "deny", "deny maybe", "allowed", "ALLOW"] {
            assert_eq!(verdict_of(unknown), None, "{unknown}");
        }
    }
}
