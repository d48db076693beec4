//! A usage report as CSV (RFC 4180): a header line, then one line per
//! group. Text fields are quoted, and a value a spreadsheet would read as
//! a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) is
//! prefixed with `'`, so a metadata value set inside a sandbox cannot run
//! in the reader's spreadsheet.

use std::fmt::Write;

use warren_api_types::UsageReport;

const HEADER: &str = "key,sandboxes,cpu_seconds,memory_gib_seconds,memory_limit_gib_seconds,\
disk_gib_hours,snapshot_gib_hours,egress_bytes,ingress_bytes,running_seconds,standby_seconds,\
paused_seconds,currency,cost_cpu,cost_memory,cost_disk,cost_snapshots,cost_egress,cost_total";

fn text(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

pub fn render(report: &UsageReport) -> String {
    let mut out = String::from(HEADER);
    out.push_str("\r\n");
    for g in &report.groups {
        let u = &g.usage;
        let c = &u.cost;
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
            g.key.as_deref().map(text).unwrap_or_default(),
            g.sandboxes,
            u.cpu_seconds,
            u.memory_gib_seconds,
            u.memory_limit_gib_seconds,
            u.disk_gib_hours,
            u.snapshot_gib_hours,
            u.egress_bytes,
            u.ingress_bytes,
            u.running_seconds,
            u.standby_seconds,
            u.paused_seconds,
            text(&c.currency),
            c.cpu,
            c.memory,
            c.disk,
            c.snapshots,
            c.egress,
            c.total,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_api_types::{UsageGroup, UsageTotals};

    #[test]
    fn keys_are_quoted_and_formulas_defused() {
        let group = |key: Option<&str>| UsageGroup {
            key: key.map(str::to_owned),
            sandboxes: 1,
            usage: UsageTotals {
                cpu_seconds: 1.5,
                ..UsageTotals::default()
            },
        };
        let report = UsageReport {
            group_by: "metadata.task".into(),
            since: String::new(),
            until: String::new(),
            groups: vec![
                group(Some("a,\"b\"")),
                group(Some("=HYPERLINK(\"x\")")),
                group(None),
            ],
            total: UsageTotals::default(),
        };
        let csv = render(&report);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], HEADER);
        assert!(
            lines[1].starts_with("\"a,\"\"b\"\"\",1,1.5,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("\"'=HYPERLINK(\"\"x\"\")\",1,"),
            "{}",
            lines[2]
        );
        assert!(lines[3].starts_with(",1,1.5,"), "{}", lines[3]);
        assert_eq!(lines[1].split(',').count(), HEADER.split(',').count() + 1);
    }
}
