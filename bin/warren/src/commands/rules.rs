//! `warren rules`: anomaly rules on running sandboxes' measurements
//! (docs/metering.md).

use clap::Subcommand;
use warren_api_types::{RuleSet, RuleSpec, SetRulesRequest};

use super::Ctx;
use crate::exit;

/// Anomaly rules: act on a sandbox whose CPU, memory, tasks or spend rate
/// stays at or above a threshold.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// The rules in force for your team, and where each comes from.
    Ls,
    /// Replace your team's rules (team admins), or every team's with
    /// --operator (operators). No --rule goes back to what is in force above.
    #[command(after_help = "\
A rule is KIND:THRESHOLD:SECONDS:ACTION. KIND is cpu, memory or pids (a
share of the sandbox's limit, 0-1), spend_rate (cost per hour),
egress_denials (refused connections and lookups per minute), process_age
(seconds the oldest command started through the API has run) or forks
(branches per minute); it fires once the measurement has stayed at or
above THRESHOLD for SECONDS, and ACTION is notify (audit entry and
rule.fired webhook), pause or kill.

Examples:
  warren rules set --rule cpu:0.9:600:pause --rule memory:0.95:120:notify
  warren rules set --rule egress_denials:100:60:kill --rule process_age:7200:0:notify
  warren rules set --operator --rule spend_rate:2:300:kill")]
    Set {
        /// KIND:THRESHOLD:SECONDS:ACTION; repeat for more kinds.
        #[arg(long = "rule", value_name = "RULE", value_parser = parse_rule)]
        rules: Vec<RuleSpec>,
        /// Set the operator's rules, for every team.
        #[arg(long)]
        operator: bool,
    },
}

fn parse_rule(raw: &str) -> Result<RuleSpec, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let [kind, threshold, for_s, action] = parts.as_slice() else {
        return Err(format!(
            "expected KIND:THRESHOLD:SECONDS:ACTION like cpu:0.9:600:pause, got '{raw}'"
        ));
    };
    Ok(RuleSpec {
        kind: (*kind).to_owned(),
        threshold: threshold
            .parse()
            .map_err(|_| format!("threshold must be a number, got '{threshold}'"))?,
        for_s: for_s
            .parse()
            .map_err(|_| format!("seconds must be a whole number, got '{for_s}'"))?,
        action: (*action).to_owned(),
    })
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    let set = match args.command {
        RulesCommand::Ls => client.rules().await?,
        RulesCommand::Set { rules, operator } => {
            let body = SetRulesRequest {
                scope: operator.then(|| "operator".to_owned()),
                rules,
            };
            client.set_rules(&body).await?
        }
    };
    if ctx.out.json {
        ctx.out.json(&set)?;
    } else {
        print_rules(ctx, &set)?;
    }
    Ok(exit::OK)
}

fn print_rules(ctx: &Ctx, set: &RuleSet) -> anyhow::Result<()> {
    let from = |r: &RuleSpec| {
        if set.team.contains(r) {
            "team"
        } else if set.operator.contains(r) {
            "operator"
        } else {
            "default"
        }
    };
    let rows = set
        .effective
        .iter()
        .map(|r| {
            vec![
                r.kind.clone(),
                format!(">= {}", r.threshold),
                format!("{}s", r.for_s),
                r.action.clone(),
                from(r).to_owned(),
            ]
        })
        .collect();
    ctx.out
        .table(&["KIND", "THRESHOLD", "FOR", "ACTION", "FROM"], rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_from_four_fields() {
        let r = parse_rule("cpu:0.9:600:pause").unwrap();
        assert_eq!(
            (r.kind.as_str(), r.threshold, r.for_s, r.action.as_str()),
            ("cpu", 0.9, 600, "pause")
        );
        for bad in ["cpu:0.9:600", "cpu:x:600:pause", "cpu:0.9:-1:pause"] {
            assert!(parse_rule(bad).is_err(), "{bad}");
        }
    }
}
