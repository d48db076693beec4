//! `warren-bench`: measures Warren against the raw engine in one run and
//! prints a Markdown table for `docs/benchmarks.md` (and JSON with `--json`).
//!
//! Run as root after `scripts/build.sh`; see docs/benchmarks.md for the
//! command line. Nothing here asserts a time: the figures are for people.

mod foundation;
mod raw;
mod snapshots;
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
    /// Pause, resume-to-exec and snapshot size by touched memory; fork time.
    Snapshots {
        /// Touched memory sizes in MiB, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10,200,1024")]
        sizes: Vec<u64>,
        /// Pause/resume cycles per size.
        #[arg(long, default_value_t = 5)]
        cycles: usize,
        /// Fork widths, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "5,10")]
        forks: Vec<usize>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rows = match cli.suite {
        Suite::Foundation {
            creates,
            execs,
            idle,
            template,
        } => foundation::run(&template, creates, execs, idle).await?,
        Suite::Snapshots {
            sizes,
            cycles,
            forks,
        } => snapshots::run(&sizes, cycles, &forks).await?,
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("| figure | Warren | raw engine | ratio |");
        println!("|---|---|---|---|");
        for r in &rows {
            println!("{}", r.markdown());
        }
    }
    Ok(())
}
