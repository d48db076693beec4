//! `warren-bench`: measures Warren against the raw engine in one run and
//! prints a Markdown table for `docs/benchmarks.md` (and JSON with `--json`).
//!
//! Run as root after `scripts/build.sh`; see docs/benchmarks.md for the
//! command line. Nothing here asserts a time: the figures are for people.

mod e2b;
mod foundation;
mod raw;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Warren benchmarks, as ratios against bare runsc in the same run")]
struct Cli {
    #[command(subcommand)]
    suite: Suite,
    /// Print results as JSON instead of a Markdown table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Suite {
    /// Create-to-exec-ready, exec round trip, idle memory per sandbox.
    Foundation {
        /// Create runs.
        #[arg(long, default_value_t = 20)]
        creates: usize,
        /// Exec runs.
        #[arg(long, default_value_t = 100)]
        execs: usize,
        /// Idle sandboxes for the memory figure.
        #[arg(long, default_value_t = 50)]
        idle: usize,
        /// Template to measure with.
        #[arg(long, default_value = "base")]
        template: String,
    },
    /// The E2B Python SDK against Warren's native API: create → run → kill
    /// and `commands.run`, timed from one Python process.
    E2b {
        /// Create → run → kill rounds (each side).
        #[arg(long, default_value_t = 20)]
        creates: usize,
        /// `echo hi` runs in one sandbox (each side).
        #[arg(long, default_value_t = 100)]
        runs: usize,
        #[arg(long, default_value = "base")]
        template: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (baseline, rows) = match cli.suite {
        Suite::Foundation {
            creates,
            execs,
            idle,
            template,
        } => (
            "raw engine",
            foundation::run(&template, creates, execs, idle).await?,
        ),
        Suite::E2b {
            creates,
            runs,
            template,
        } => ("native API", e2b::run(&template, creates, runs).await?),
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let warren = if baseline == "native API" {
            "E2B SDK"
        } else {
            "Warren"
        };
        println!("| figure | {warren} | {baseline} | ratio |");
        println!("|---|---|---|---|");
        for r in &rows {
            println!("{}", r.markdown());
        }
    }
    Ok(())
}
