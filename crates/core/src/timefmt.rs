//! How times appear on every wire Warren speaks: RFC 3339 in UTC.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `t` as RFC 3339 (`2026-12-06T20:06:11.5Z`). A time outside RFC 3339's
/// four-digit years (no validated input reaches one) reads as empty.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_rfc3339() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_250_000_000).unwrap();
        assert_eq!(rfc3339(t), "2027-01-15T08:00:00.25Z");
    }
}
