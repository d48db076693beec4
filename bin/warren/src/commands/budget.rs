//! `warren budget`: what a team, or one of its users or keys, may spend
//! per day or month (docs/metering.md).

use clap::Subcommand;
use warren_api_types::{Budget, CreateBudgetRequest, UpdateBudgetRequest};

use super::Ctx;
use super::usage::money;
use crate::exit;

/// Budgets: spending limits that warn at 80 % and stop new work at 100 %.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BudgetCommand,
}

#[derive(Debug, Subcommand)]
enum BudgetCommand {
    /// Create a budget for your team (team admins).
    #[command(after_help = "\
At 80 % of the amount a budget.warning event goes out (audit log and
lifecycle webhooks); at 100 % budget.exceeded, creates, resumes and forks
in its scope are refused with 402 budget_exceeded, and its running
sandboxes are paused (--action pause, the default), killed (kill) or left
running (notify). Amounts are in the daemon's price table currency.

Examples:
  warren budget create --period month --amount 200
  warren budget create --period day --amount 5 --user $USER_ID --action kill")]
    Create {
        /// day or month (UTC).
        #[arg(long)]
        period: String,
        /// The amount, in the price table's currency.
        #[arg(long)]
        amount: f64,
        /// pause, kill or notify.
        #[arg(long)]
        action: Option<String>,
        /// Only sandboxes this user (id) dispatched.
        #[arg(long, value_name = "USER_ID")]
        user: Option<String>,
        /// Only sandboxes this key (id) created.
        #[arg(long, value_name = "KEY_ID")]
        key: Option<String>,
    },
    /// Change a budget's amount or action (team admins).
    Set {
        /// The budget id.
        id: String,
        #[arg(long)]
        amount: Option<f64>,
        /// pause, kill or notify.
        #[arg(long)]
        action: Option<String>,
    },
    /// List your team's budgets (every team's for operators) with their spend.
    Ls,
    /// Delete a budget (team admins).
    Rm {
        /// The budget id.
        id: String,
    },
    /// Lift a budget until its period ends, or put it back with --off
    /// (operators).
    Lift {
        /// The budget id.
        id: String,
        /// Put the budget back in force.
        #[arg(long)]
        off: bool,
    },
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    let changed = match args.command {
        BudgetCommand::Create {
            period,
            amount,
            action,
            user,
            key,
        } => {
            let body = CreateBudgetRequest {
                period,
                amount,
                action,
                user,
                key,
            };
            client.create_budget(&body).await?
        }
        BudgetCommand::Set { id, amount, action } => {
            let body = UpdateBudgetRequest { amount, action };
            client.update_budget(&id, &body).await?
        }
        BudgetCommand::Lift { id, off } => client.override_budget(&id, !off).await?,
        BudgetCommand::Rm { id } => {
            client.delete_budget(&id).await?;
            ctx.out.note(&format!("budget {id} deleted"));
            return Ok(exit::OK);
        }
        BudgetCommand::Ls => {
            let list = client.budgets().await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                print_budgets(ctx, list.budgets)?;
            }
            return Ok(exit::OK);
        }
    };
    if ctx.out.json {
        ctx.out.json(&changed)?;
    } else {
        print_budgets(ctx, vec![changed])?;
    }
    Ok(exit::OK)
}

fn state(b: &Budget) -> &'static str {
    match (b.lifted, b.exceeded, b.warned) {
        (true, _, _) => "lifted",
        (false, true, _) => "EXCEEDED",
        (false, false, true) => "warned",
        _ => "ok",
    }
}

fn print_budgets(ctx: &Ctx, budgets: Vec<Budget>) -> anyhow::Result<()> {
    let rows = budgets
        .iter()
        .map(|b| {
            let scope = match (&b.user, &b.key) {
                (Some(u), _) => format!("user {u}"),
                (None, Some(k)) => format!("key {k}"),
                (None, None) => format!("team {}", b.team),
            };
            vec![
                b.id.clone(),
                scope,
                b.period.clone(),
                money(b.spend, &b.currency),
                money(b.amount, &b.currency),
                b.action.clone(),
                state(b).to_owned(),
            ]
        })
        .collect();
    ctx.out.table(
        &[
            "ID", "SCOPE", "PERIOD", "SPENT", "AMOUNT", "ACTION", "STATE",
        ],
        rows,
    )?;
    Ok(())
}
