//! `warren usage`: what sandboxes used and cost, grouped
//! (docs/metering.md).

use warren_api_types::{UsageReport, UsageTotals};

use super::Ctx;
use crate::exit;

/// What sandboxes used and what it cost, by team, user, key, sandbox,
/// template or a metadata key.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Usage is measured by the daemon's meter (CPU time, memory in use, disk,
snapshots stored, traffic beyond the host, time running and paused) and
priced with the operator's table. A team sees its own sandboxes; operators
see every team's.

Examples:
  warren usage --by metadata.task --since 7d
  warren usage --by template --since 2026-12-01T00:00:00Z --until 1d
  warren usage --by sandbox --csv > usage.csv")]
pub struct Args {
    /// team, user, key, sandbox, template or metadata.KEY.
    #[arg(long = "by", value_name = "GROUP", default_value = "sandbox")]
    by: String,
    /// From: a span back from now (7d, 24h, 30m) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", default_value = "30d")]
    since: String,
    /// To: a span back from now or an RFC 3339 time [default: now].
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// Operators: one team's sandboxes (its id).
    #[arg(long, value_name = "TEAM")]
    team: Option<String>,
    /// Print CSV (a header line, then one line per group; over --json).
    #[arg(long)]
    csv: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    let mut query = vec![("group_by", args.by), ("since", args.since)];
    if let Some(until) = args.until {
        query.push(("until", until));
    }
    if let Some(team) = args.team {
        query.push(("team", team));
    }
    if args.csv {
        print!("{}", client.usage_csv(&query).await?);
        return Ok(exit::OK);
    }
    let report = client.usage(&query).await?;
    if ctx.out.json {
        ctx.out.json(&report)?;
    } else {
        print_report(ctx, &report)?;
    }
    Ok(exit::OK)
}

/// A money amount: cents for large ones, more digits for small ones.
pub fn money(amount: f64, currency: &str) -> String {
    if amount >= 1.0 {
        format!("{amount:.2} {currency}")
    } else {
        format!("{amount:.6} {currency}")
    }
}

/// Seconds as `1h02m`, `3m05s` or `12.3s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s >= 3600.0 {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    } else if s >= 60.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1}s")
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn row(key: String, sandboxes: u64, u: &UsageTotals) -> Vec<String> {
    vec![
        key,
        sandboxes.to_string(),
        format!("{:.2}", u.cpu_seconds),
        format!("{:.2}", u.memory_gib_seconds),
        duration(u.running_seconds),
        duration(u.standby_seconds + u.paused_seconds),
        bytes(u.egress_bytes),
        money(u.cost.total, &u.cost.currency),
    ]
}

fn print_report(ctx: &Ctx, report: &UsageReport) -> anyhow::Result<()> {
    let mut rows: Vec<Vec<String>> = report
        .groups
        .iter()
        .map(|g| {
            let key = g.key.clone().unwrap_or_else(|| "(none)".to_owned());
            row(key, g.sandboxes, &g.usage)
        })
        .collect();
    if report.groups.len() > 1 {
        let sandboxes = report.groups.iter().map(|g| g.sandboxes).sum();
        rows.push(row("TOTAL".to_owned(), sandboxes, &report.total));
    }
    let by = report.group_by.to_uppercase();
    ctx.out.table(
        &[
            &by,
            "SANDBOXES",
            "CPU-S",
            "MEM-GIB-S",
            "RUNNING",
            "PAUSED",
            "EGRESS",
            "COST",
        ],
        rows,
    )?;
    ctx.out.note(&format!(
        "from {} to {} (to the minute)",
        report.since, report.until
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_times_read_well() {
        assert_eq!(money(12.345, "USD"), "12.35 USD");
        assert_eq!(money(0.000_123_4, "EUR"), "0.000123 EUR");
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(3720.0), "1h02m");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(20_971_520), "21.0 MB");
    }
}
