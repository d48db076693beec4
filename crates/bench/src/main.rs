//! `warren-bench`: measures Warren against the raw engine in one run and
//! prints a Markdown table for `docs/benchmarks.md` (and JSON with `--json`).
//!
//! Run as root after `scripts/build.sh`; see docs/benchmarks.md for the
//! command line. Nothing here asserts a time: the figures are for people.

mod audit;
mod builds;
mod e2b;
mod events;
mod foundation;
mod fs_pause;
mod host;
mod interpreter;
mod load;
mod metering;
mod network;
mod pool;
mod ports;
mod raw;
mod secrets;
mod snapshots;
mod soak;
mod stats;
mod tsnap;

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
    /// Warm pools: pooled against cold create and bare `runsc run`,
    /// create → first command, concurrent creates, hit rate on a bursty
    /// trace.
    Pool {
        /// Creates per side (pooled, cold, bare).
        #[arg(long, default_value_t = 20)]
        creates: usize,
        /// Concurrent creates served by a pool of that size.
        #[arg(long, default_value_t = 50)]
        concurrent: usize,
        #[arg(long, default_value = "base")]
        template: String,
    },
    /// Persisted audit log: appends/s, append latency, proofs and verify.
    Audit {
        /// Entries to fill the log to for the proof and verify figures.
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Concurrent callers for the throughput figure.
        #[arg(long, default_value_t = 64)]
        callers: u64,
        /// Also time `warren audit verify` against a real daemon (root;
        /// WARREN_BIN, WARREN_TEST_AGENT and WARREN_TEST_TEMPLATES as for
        /// the foundation suite).
        #[arg(long)]
        through_cli: bool,
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
    /// A GET through the exposed-port proxy against the same GET straight
    /// to the sandbox's address.
    Ports {
        /// Requests per side.
        #[arg(long, default_value_t = 1000)]
        requests: usize,
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
    /// Egress through the proxy and resolver against a plain namespace:
    /// a large download, small HTTPS requests, DNS answers.
    Network {
        /// Download size in MB.
        #[arg(long, default_value_t = 100)]
        download_mb: u64,
        /// Downloads per path (the median is reported).
        #[arg(long, default_value_t = 5)]
        downloads: usize,
        /// HTTPS requests, a new connection each.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// DNS queries.
        #[arg(long, default_value_t = 200)]
        queries: usize,
    },
    /// Event → handler done for running, standby and image-paused
    /// sandboxes; inbox throughput; HTTP to a paused port.
    Events {
        /// Samples per latency figure.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Events sent for the throughput figure.
        #[arg(long, default_value_t = 4000)]
        events: usize,
    },
    /// Small HTTPS requests through the secret-injecting TLS interceptor
    /// against the same requests sent straight to the same local server.
    Secrets {
        /// Requests per shape and side.
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
    /// Template builds: the `base` recipe, and a 3-step Dockerfile in full,
    /// unchanged, with its last step changed and with `--no-cache`.
    Builds {
        /// Rounds of the Dockerfile builds.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Leave out the `base` recipe build (minutes, from the mirror).
        #[arg(long)]
        no_base: bool,
    },
    /// Create of `code-interpreter` from its template snapshot, against
    /// `runsc restore` of the same image and a cold create.
    Tsnap {
        /// Creates per side.
        #[arg(long, default_value_t = 20)]
        creates: usize,
    },
    /// The code interpreter through E2B's proxy: create → first
    /// `run_code` against create → first exec, `run_code("1+1")` round
    /// trips, and a DataFrame's describe() against plain python3.
    Interpreter {
        /// Creates per side.
        #[arg(long, default_value_t = 10)]
        creates: usize,
        /// `run_code("1+1")` calls.
        #[arg(long, default_value_t = 100)]
        calls: usize,
    },
    /// What metering costs: create and exec with metering on and off, the
    /// meter's CPU with many idle sandboxes, `/metrics` scrape time.
    Metering {
        /// Creates per side.
        #[arg(long, default_value_t = 20)]
        creates: usize,
        /// Exec calls per side.
        #[arg(long, default_value_t = 100)]
        execs: usize,
        /// Idle sandboxes on each daemon for the sampling figures.
        #[arg(long, default_value_t = 100)]
        idle: usize,
        /// Seconds the daemons' CPU is measured.
        #[arg(long, default_value_t = 60)]
        window: u64,
    },
    /// Load and admission: a burst of concurrent creates (served, or
    /// refused with a retry hint; health during it), then the host's
    /// capacity for idle sandboxes up to the memory reserve.
    Load {
        /// Creates sent at once.
        #[arg(long, default_value_t = 100)]
        creates: usize,
        /// GiB of the host's available memory the capacity probe may fill
        /// (the reserve is set that far below what is available at its
        /// start); 0 skips the probe.
        #[arg(long, default_value_t = 8)]
        probe_gib: u64,
        /// Most idle sandboxes the probe creates.
        #[arg(long, default_value_t = 900)]
        probe_max: usize,
    },
    /// Soak: the crash-chaos workload without kills for a long time,
    /// sampling the daemon's memory, descriptors, threads and the
    /// operations' latencies per interval; prints the drift.
    Soak {
        /// Minutes the workload runs.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 300)]
        interval: u64,
        /// Concurrent workload clients.
        #[arg(long, default_value_t = 3)]
        clients: usize,
        /// Sandboxes alive at most at once.
        #[arg(long, default_value_t = 5)]
        max_live: usize,
        /// The workload's seed [default: from the clock].
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// The columns of suites that measure Warren against the bare engine.
const RAW_ENGINE: (&str, &str) = ("Warren", "raw engine");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let ((measured, baseline), rows) = match cli.suite {
        Suite::Foundation {
            creates,
            execs,
            idle,
            template,
        } => (
            RAW_ENGINE,
            foundation::run(&template, creates, execs, idle).await?,
        ),
        Suite::Pool {
            creates,
            concurrent,
            template,
        } => (
            ("Warren", "bare runsc run"),
            pool::run(&template, creates, concurrent).await?,
        ),
        Suite::Audit {
            entries,
            callers,
            through_cli,
        } => {
            let mut rows = audit::run(entries, callers).await?;
            if through_cli {
                rows.extend(audit::verify_through_cli(entries).await?);
            }
            (RAW_ENGINE, rows)
        }
        Suite::E2b {
            creates,
            runs,
            template,
        } => (
            ("E2B SDK", "native API"),
            e2b::run(&template, creates, runs).await?,
        ),
        Suite::Ports { requests, template } => (
            ("port proxy", "direct"),
            ports::run(&template, requests).await?,
        ),
        Suite::Snapshots {
            sizes,
            cycles,
            forks,
        } => (RAW_ENGINE, snapshots::run(&sizes, cycles, &forks).await?),
        Suite::Network {
            download_mb,
            downloads,
            requests,
            queries,
        } => (
            ("through the proxy", "baseline"),
            network::run(download_mb, downloads, requests, queries).await?,
        ),
        Suite::Events { runs, events } => (
            ("through the inbox", "baseline"),
            events::run(runs, events).await?,
        ),
        Suite::Secrets { requests } => {
            (("with injection", "direct"), secrets::run(requests).await?)
        }
        Suite::Builds { runs, no_base } => (("build", "floor"), builds::run(runs, !no_base).await?),
        Suite::Tsnap { creates } => (
            ("from the template snapshot", "baseline"),
            tsnap::run(creates).await?,
        ),
        Suite::Interpreter { creates, calls } => (
            ("code interpreter", "baseline"),
            interpreter::run(creates, calls).await?,
        ),
        Suite::Metering {
            creates,
            execs,
            idle,
            window,
        } => (
            ("metering on", "metering off"),
            metering::run(creates, execs, idle, window).await?,
        ),
        Suite::Load {
            creates,
            probe_gib,
            probe_max,
        } => (
            ("Warren", "of / published"),
            load::run(creates, probe_gib, probe_max).await?,
        ),
        Suite::Soak {
            minutes,
            interval,
            clients,
            max_live,
            seed,
        } => (
            ("last / after", "first / before"),
            soak::run(minutes, interval, clients, max_live, seed).await?,
        ),
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("| figure | {measured} | {baseline} | ratio |");
        println!("|---|---|---|---|");
        for r in &rows {
            println!("{}", r.markdown());
        }
    }
    Ok(())
}
