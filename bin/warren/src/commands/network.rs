//! `warren network`: show or change a sandbox's network policy, or list
//! its network events.

use warren_api_types::{NetworkPolicy, Sandbox};
use warren_core::SandboxId;
use warren_core::network::{Internet, NetRule};

use super::Ctx;
use crate::{exit, parse};

/// Show a sandbox's network policy, change it live, or list its network events.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without options the policy is shown. --allow, --deny and --remove change the
lists (repeatable; CIDRs like 203.0.113.0/24 or domain patterns like
github.com and *.pypi.org); deny wins over allow. The change applies at once
to new connections and DNS queries.

Examples:
  warren network $ID
  warren network $ID --allow github.com --allow '*.pypi.org'
  warren network $ID --deny 203.0.113.7 --remove github.com
  warren network $ID --internet          every public destination not denied
  warren network $ID --events --json")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// Add to the allow list; repeatable.
    #[arg(long, value_name = "RULE", value_parser = parse_rule)]
    allow: Vec<NetRule>,
    /// Add to the deny list; repeatable.
    #[arg(long, value_name = "RULE", value_parser = parse_rule)]
    deny: Vec<NetRule>,
    /// Remove from both lists; repeatable.
    #[arg(long, value_name = "RULE", value_parser = parse_rule)]
    remove: Vec<NetRule>,
    /// Allow every public destination the deny list does not name.
    #[arg(long, conflicts_with = "no_internet")]
    internet: bool,
    /// Allow only what the allow list names.
    #[arg(long)]
    no_internet: bool,
    /// List the newest network events instead.
    #[arg(long, conflicts_with_all = ["allow", "deny", "remove", "internet", "no_internet"])]
    events: bool,
    /// How many events to list.
    #[arg(long, value_name = "N", default_value_t = 50, requires = "events")]
    limit: u32,
}

/// A CIDR or domain pattern.
pub fn parse_rule(raw: &str) -> Result<NetRule, String> {
    raw.parse::<NetRule>().map_err(|e| e.message)
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    if args.events {
        let list = client.network_events(&args.id, args.limit).await?;
        if ctx.out.json {
            ctx.out.json(&list)?;
            return Ok(exit::OK);
        }
        let rows = list
            .events
            .into_iter()
            .map(|e| {
                let dest = match (e.dest, e.port) {
                    (Some(d), Some(p)) => format!("{d}:{p}"),
                    (Some(d), None) => d,
                    _ => String::new(),
                };
                let verdict = match e.reason {
                    Some(r) => format!("{} ({r})", e.verdict),
                    None => e.verdict,
                };
                vec![
                    e.at,
                    e.kind,
                    e.name.unwrap_or_default(),
                    dest,
                    verdict,
                    format!("{}/{}", e.bytes_out, e.bytes_in),
                ]
            })
            .collect();
        ctx.out.table(
            &[
                "TIME",
                "KIND",
                "NAME",
                "DESTINATION",
                "VERDICT",
                "BYTES OUT/IN",
            ],
            rows,
        )?;
        return Ok(exit::OK);
    }
    let current = client.get(&args.id).await?;
    let changes = !args.allow.is_empty()
        || !args.deny.is_empty()
        || !args.remove.is_empty()
        || args.internet
        || args.no_internet;
    let shown = if changes {
        let policy = updated(current.network, &args);
        client.set_network(&args.id, &policy).await?
    } else {
        current
    };
    show(ctx, &shown)?;
    Ok(exit::OK)
}

fn updated(mut p: NetworkPolicy, args: &Args) -> NetworkPolicy {
    let add = |list: &mut Vec<NetRule>, rules: &[NetRule]| {
        for r in rules {
            if !list.contains(r) {
                list.push(r.clone());
            }
        }
    };
    add(&mut p.allow, &args.allow);
    add(&mut p.deny, &args.deny);
    p.allow.retain(|r| !args.remove.contains(r));
    p.deny.retain(|r| !args.remove.contains(r));
    if args.internet {
        p.internet = Internet::Allow;
    } else if args.no_internet {
        p.internet = Internet::Deny;
    }
    p
}

fn show(ctx: &Ctx, s: &Sandbox) -> anyhow::Result<()> {
    if ctx.out.json {
        ctx.out.json(&s.network)?;
        return Ok(());
    }
    let list = |rules: &[NetRule]| {
        if rules.is_empty() {
            "-".to_owned()
        } else {
            rules
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let internet = match s.network.internet {
        Internet::Allow => "allow (every public destination not denied)",
        Internet::Deny => "deny (only what allow names)",
    };
    ctx.out.fields(&[
        ("sandbox", s.id.clone()),
        ("internet", internet.to_owned()),
        ("allow", list(&s.network.allow)),
        ("deny", list(&s.network.deny)),
    ])?;
    Ok(())
}
