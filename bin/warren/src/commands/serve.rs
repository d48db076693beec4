//! `warren serve`: run the daemon until SIGTERM or SIGINT.

use std::io::IsTerminal;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use warren_core::network::{Internet, NetworkPolicy};

use crate::config::DEFAULT_DATA_DIR;
use crate::exit;

/// Run the Warren daemon (normally as root).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Logs go to stderr; set their level with WARREN_LOG (e.g. info, debug,
warren_server=trace). Stops cleanly on SIGTERM or SIGINT.

Examples:
  warren serve
  WARREN_LOG=debug warren serve --listen 0.0.0.0:8700 --log-format json
  warren serve --data-dir /srv/warren --sandbox-cidr 10.78.0.0/16
  warren serve --network-default allow --dns-upstream 192.0.2.53")]
pub struct Args {
    /// Address of the HTTP API.
    #[arg(
        long,
        env = "WARREN_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8700"
    )]
    listen: SocketAddr,
    /// State directory (database, sandboxes, snapshots, client.json).
    #[arg(long, env = "WARREN_DATA_DIR", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Template directory [default: DATA_DIR/templates].
    #[arg(long, env = "WARREN_TEMPLATES_DIR", value_name = "DIR")]
    templates_dir: Option<PathBuf>,
    /// The static warren-agent binary [default: warren-agent next to this program].
    #[arg(long, env = "WARREN_AGENT_BINARY", value_name = "PATH")]
    agent_binary: Option<PathBuf>,
    /// IPv4 range carved into one /30 per sandbox; daemons on one host need disjoint ranges.
    #[arg(long, env = "WARREN_SANDBOX_CIDR", value_name = "CIDR", default_value = "10.77.0.0/16", value_parser = parse_cidr)]
    sandbox_cidr: String,
    /// Port of the sandbox listener, where code inside sandboxes calls the API
    /// with its sandbox token [default: the API port + 1].
    #[arg(long, env = "WARREN_SANDBOX_API_PORT", value_name = "PORT")]
    sandbox_api_port: Option<u16>,
    /// Lifetime of sandbox tokens (15m to 1h); they rotate at half-life.
    #[arg(long, env = "WARREN_SANDBOX_TOKEN_TTL", value_name = "DURATION", default_value = "30m", value_parser = parse_token_ttl)]
    sandbox_token_ttl: u64,
    /// Lifetime of access grants, the tokens that open a sandbox's agent and
    /// ports (E2B's envd and traffic access tokens); 5m to 30 days.
    #[arg(long, env = "WARREN_GRANT_TTL", value_name = "DURATION", default_value = "24h", value_parser = parse_grant_ttl)]
    grant_ttl: u64,
    /// How long a paused sandbox stays frozen in memory after its image is
    /// written, so that a resume within it takes milliseconds; 0 turns this off.
    #[arg(long, env = "WARREN_STANDBY", value_name = "DURATION", default_value = "60s", value_parser = parse_standby)]
    standby: u64,
    /// Domain of exposed-port hosts: `{port}-{id}.DOMAIN` on the API port
    /// reaches that port of a sandbox (`*.localhost` needs no DNS).
    #[arg(long, env = "WARREN_PORTS_DOMAIN", value_name = "DOMAIN", default_value = warren_server::ports::DEFAULT_DOMAIN, value_parser = parse_ports_domain)]
    ports_domain: String,
    /// Most connections one client address may hold open to the API at
    /// once; more are answered 429. Raise it behind a reverse proxy, where
    /// every client shares the proxy's address.
    #[arg(long, env = "WARREN_MAX_CONNECTIONS_PER_SOURCE", value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_source: u32,
    /// The domain E2B's answers name, from which the E2B SDKs build
    /// `getHost(port)` = `{port}-{id}.DOMAIN` [default: the ports domain
    /// and the API port, e.g. localhost:8700]. Name the public host when a
    /// TLS proxy is in front.
    #[arg(long, env = "WARREN_E2B_DOMAIN", value_name = "DOMAIN")]
    e2b_domain: Option<String>,
    /// Free space, in MiB, the data directory's filesystem keeps: below it
    /// new sandboxes (creates, forks) are refused with 507.
    #[arg(long, env = "WARREN_DISK_RESERVE_MB", value_name = "MIB", default_value_t = warren_server::service::storage::DEFAULT_RESERVE_MB)]
    disk_reserve_mb: u64,
    /// Memory, in MiB, the host keeps available: below it new sandboxes
    /// (creates, forks) and resumes from an image are refused with 503 and
    /// a retry hint, so the kernel never has to kill running ones; 0 turns
    /// the check off.
    #[arg(long, env = "WARREN_MEMORY_RESERVE_MB", value_name = "MIB", default_value_t = warren_server::service::memory::DEFAULT_RESERVE_MB)]
    memory_reserve_mb: u64,
    /// Sandboxes being created at once (creates and forks); more wait for
    /// a turn [default: twice the CPUs].
    #[arg(long, env = "WARREN_MAX_CREATING", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_creating: Option<u32>,
    /// Creates that may wait for a turn; beyond it, or when the wait would
    /// pass 30 s, a create is refused at once with 503 and a retry hint.
    #[arg(long, env = "WARREN_CREATE_QUEUE", value_name = "N", default_value_t = warren_server::service::gate::DEFAULT_QUEUE as u32)]
    create_queue: u32,
    /// Disk limit, in MiB, of sandboxes created without one: what a
    /// sandbox may write (root filesystem and /tmp) before writes fail with
    /// "no space left on device"; 64 to 1048576.
    #[arg(long, env = "WARREN_DEFAULT_DISK_MB", value_name = "MIB", default_value_t = warren_core::Limits::DEFAULT_DISK_MB, value_parser = clap::value_parser!(u32).range(i64::from(warren_core::Limits::MIN_DISK_MB)..=i64::from(warren_core::Limits::MAX_DISK_MB)))]
    default_disk_mb: u32,
    /// The sandbox backend.
    #[arg(long, env = "WARREN_RUNTIME", value_enum, default_value_t = RuntimeChoice::Gvisor)]
    runtime: RuntimeChoice,
    /// Network policy of sandboxes created without one: `deny` (only what
    /// a policy allows) or `allow` (every public destination).
    #[arg(long, env = "WARREN_NETWORK_DEFAULT", value_enum, default_value_t = NetworkDefault::Deny)]
    network_default: NetworkDefault,
    /// A JSON network policy file used as the default instead (same form as
    /// a sandbox's `network`).
    #[arg(
        long,
        env = "WARREN_NETWORK_POLICY",
        value_name = "FILE",
        conflicts_with = "network_default"
    )]
    network_policy: Option<PathBuf>,
    /// DNS server the sandboxes' resolver forwards allowed queries to
    /// (ADDR or ADDR:PORT) [default: the first nameserver of /etc/resolv.conf].
    #[arg(long, env = "WARREN_DNS_UPSTREAM", value_name = "ADDR", value_parser = parse_upstream)]
    dns_upstream: Option<SocketAddr>,
    /// Host port of the sandboxes' DNS resolver [default: the API port + 2].
    #[arg(long, env = "WARREN_DNS_PORT", value_name = "PORT")]
    dns_port: Option<u16>,
    /// Host port of the transparent egress proxy [default: the API port + 3].
    #[arg(long, env = "WARREN_EGRESS_PROXY_PORT", value_name = "PORT")]
    egress_proxy_port: Option<u16>,
    /// One more CA certificate file (PEM) that servers receiving injected
    /// secrets may be verified against, besides the system's CAs.
    #[arg(long, env = "WARREN_UPSTREAM_CA", value_name = "FILE")]
    upstream_ca: Option<PathBuf>,
    /// A range lifecycle webhooks may be delivered to although it is closed
    /// by default (loopback, link-local, private, unique-local); repeat for
    /// more. The sandbox pool is never opened.
    #[arg(long = "webhook-allow", value_name = "CIDR")]
    webhook_allow: Vec<warren_core::network::Cidr>,
    /// Seconds before a failed webhook delivery is first retried.
    #[arg(long, default_value_t = 5, value_name = "SECONDS", hide = true)]
    webhook_first_retry: u64,
    /// Snapshot each template with a start command once it answers, and
    /// create sandboxes of it by restoring that image (`true` or `false`).
    #[arg(long, env = "WARREN_TEMPLATE_SNAPSHOTS", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    template_snapshots: bool,
    /// A domain or CIDR every template build's RUN steps may reach besides
    /// the host's Debian mirror (e.g. the Python package index for E2B's
    /// `pip_install`); repeat for more.
    #[arg(long = "build-allow", value_name = "DOMAIN|CIDR")]
    build_allow: Vec<warren_core::network::NetRule>,
    /// How often the meter samples every sandbox's use (1s to 5m).
    #[arg(long, env = "WARREN_METER_INTERVAL", value_name = "DURATION", default_value = "15s", value_parser = parse_meter_interval)]
    meter_interval: std::time::Duration,
    /// Run the meter (`true` or `false`). Without it nothing is metered and
    /// budgets and anomaly rules are not enforced.
    #[arg(long, env = "WARREN_METERING", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    metering: bool,
    /// A JSON price table (currency, vcpu_second, memory_gib_second,
    /// disk_gib_hour, snapshot_gib_hour, egress_gb) [default: the prices in
    /// docs/metering.md].
    #[arg(long, env = "WARREN_PRICES", value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Also give `/metrics` one series per live sandbox (labels `sandbox`,
    /// `team`): CPU, memory, egress and cost since the daemon started.
    #[arg(long, env = "WARREN_METRICS_PER_SANDBOX")]
    metrics_per_sandbox: bool,
    /// Log line format.
    #[arg(long, env = "WARREN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Send traces of creates, execs, pauses, resumes and forks to this
    /// OpenTelemetry collector over OTLP/HTTP (e.g. http://127.0.0.1:4318;
    /// spans are posted to its /v1/traces).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// A header sent with every OTLP post, NAME=VALUE (repeat, or
    /// comma-separate in the variable).
    #[arg(
        long = "otlp-header",
        env = "OTEL_EXPORTER_OTLP_HEADERS",
        value_name = "NAME=VALUE",
        value_delimiter = ','
    )]
    otlp_headers: Vec<String>,
    /// The `service.name` of the exported traces.
    #[arg(
        long,
        env = "OTEL_SERVICE_NAME",
        value_name = "NAME",
        default_value = "warren"
    )]
    otlp_service_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RuntimeChoice {
    /// gVisor (runsc), on every Linux host.
    Gvisor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NetworkDefault {
    Deny,
    Allow,
}

/// `ADDR` (port 53) or `ADDR:PORT`.
fn parse_upstream(raw: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = raw.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    raw.parse()
        .map_err(|_| format!("expected an address like 192.0.2.53 or 192.0.2.53:5353, got '{raw}'"))
}

/// The default policy from the flags.
fn default_policy(args: &Args) -> anyhow::Result<NetworkPolicy> {
    let Some(path) = &args.network_policy else {
        return Ok(NetworkPolicy {
            internet: match args.network_default {
                NetworkDefault::Deny => Internet::Deny,
                NetworkDefault::Allow => Internet::Allow,
            },
            ..NetworkPolicy::default()
        });
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the network policy {}", path.display()))?;
    let policy: NetworkPolicy = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a network policy", path.display()))?;
    policy
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
    Ok(policy)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A duration like `30m` or `1h`, in seconds, within the allowed range.
fn parse_token_ttl(raw: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(raw)
        .map_err(|e| format!("expected a duration like 30m, got '{raw}': {e}"))?;
    let range = warren_server::auth::token::TOKEN_TTL_RANGE_S;
    if !range.contains(&d.as_secs()) {
        return Err(format!("sandbox tokens live 15m to 1h, got '{raw}'"));
    }
    Ok(d.as_secs())
}

fn parse_grant_ttl(raw: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(raw)
        .map_err(|e| format!("expected a duration like 24h, got '{raw}': {e}"))?;
    let range = warren_server::auth::grant::GRANT_TTL_RANGE_S;
    if !range.contains(&d.as_secs()) {
        return Err(format!("access grants live 5m to 30 days, got '{raw}'"));
    }
    Ok(d.as_secs())
}

/// A duration like `60s` or `10m` (at most a day), in seconds; `0` is off.
fn parse_standby(raw: &str) -> Result<u64, String> {
    if raw.trim() == "0" {
        return Ok(0);
    }
    let d = humantime::parse_duration(raw)
        .map_err(|e| format!("expected a duration like 60s or 10m, or 0, got '{raw}': {e}"))?;
    if d.as_secs() > 86_400 {
        return Err(format!("standby lasts at most 1 day, got '{raw}'"));
    }
    Ok(d.as_secs())
}

/// A duration from 1 s to 5 min.
fn parse_meter_interval(raw: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(raw)
        .map_err(|e| format!("expected a duration like 15s, got '{raw}': {e}"))?;
    if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_secs(300) {
        return Err(format!("the meter samples every 1s to 5m, got '{raw}'"));
    }
    Ok(d)
}

/// The price table in `path`, checked.
fn load_prices(path: Option<&std::path::Path>) -> anyhow::Result<warren_core::metering::Prices> {
    let Some(path) = path else {
        return Ok(warren_core::metering::Prices::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the price table {}", path.display()))?;
    let prices: warren_core::metering::Prices = serde_json::from_str(&text).with_context(|| {
        format!(
            "the price table {} is not valid: expected a JSON object with currency, vcpu_second, memory_gib_second, disk_gib_hour, snapshot_gib_hour and egress_gb",
            path.display()
        )
    })?;
    prices
        .validate()
        .map_err(|e| anyhow::anyhow!("the price table {}: {}", path.display(), e.message))?;
    Ok(prices)
}

fn parse_ports_domain(raw: &str) -> Result<String, String> {
    warren_server::ports::parse_domain(raw).map_err(|e| e.message)
}

/// Accepts `A.B.C.D/N` with N ≤ 30 (each sandbox needs a /30).
fn parse_cidr(raw: &str) -> Result<String, String> {
    let err =
        || format!("expected an IPv4 range like 10.77.0.0/16 (prefix at most /30), got '{raw}'");
    let (addr, prefix) = raw.split_once('/').ok_or_else(err)?;
    addr.parse::<Ipv4Addr>().map_err(|_| err())?;
    let prefix: u8 = prefix.parse().map_err(|_| err())?;
    if prefix > 30 {
        return Err(err());
    }
    Ok(raw.to_owned())
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let exporter = init_logging(&args)?;
    // Register the handlers before starting so an early signal is not lost.
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let shutdown = async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down");
    };
    let network_default = default_policy(&args)?;
    let prices = load_prices(args.prices.as_deref())?;
    let config = warren_server::Config {
        listen: args.listen,
        data_dir: args.data_dir,
        templates_dir: args.templates_dir,
        agent_binary: args.agent_binary,
        sandbox_cidr: args.sandbox_cidr,
        sandbox_api_port: args.sandbox_api_port,
        sandbox_token_ttl_s: args.sandbox_token_ttl,
        grant_ttl_s: args.grant_ttl,
        standby_s: args.standby,
        ports_domain: args.ports_domain,
        max_connections_per_source: args.max_connections_per_source as usize,
        e2b_domain: args.e2b_domain,
        disk_reserve_mb: args.disk_reserve_mb,
        memory_reserve_mb: args.memory_reserve_mb,
        max_creating: args
            .max_creating
            .map_or_else(warren_server::service::gate::default_in_flight, |n| {
                n as usize
            }),
        create_queue: args.create_queue as usize,
        default_disk_mb: args.default_disk_mb,
        runtime: match args.runtime {
            RuntimeChoice::Gvisor => warren_server::RuntimeKind::Gvisor,
        },
        network_default,
        dns_upstream: args.dns_upstream,
        dns_port: args.dns_port,
        egress_proxy_port: args.egress_proxy_port,
        upstream_ca: args.upstream_ca,
        webhook_allow: args.webhook_allow,
        webhook_first_retry_s: args.webhook_first_retry.max(1),
        template_snapshots: args.template_snapshots,
        build_allow: args.build_allow,
        meter_interval: args.meter_interval,
        metering: args.metering,
        metrics_per_sandbox: args.metrics_per_sandbox,
        prices,
    };
    let served = warren_server::serve(config, shutdown).await;
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    served.context("warren serve failed")?;
    Ok(exit::OK)
}

/// Log lines to stderr as `WARREN_LOG` filters them, and the operation
/// spans to the OTLP collector if one is named (whatever the log filter).
fn init_logging(args: &Args) -> anyhow::Result<Option<warren_otlp::Exporter>> {
    let filter = match std::env::var("WARREN_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::try_new(&spec).with_context(|| {
            format!("WARREN_LOG='{spec}' is not a valid log filter (try info or debug)")
        })?,
        _ => EnvFilter::new("info"),
    };
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let lines = match args.log_format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().boxed(),
    };
    let (exporter, spans) = match &args.otlp_endpoint {
        Some(endpoint) => {
            let config = warren_otlp::ExporterConfig::new(
                endpoint,
                &args.otlp_headers,
                &args.otlp_service_name,
            )?;
            let (exporter, layer) = warren_otlp::Exporter::start(config)?;
            let only_operations = Targets::new().with_target(warren_otlp::TARGET, Level::TRACE);
            (Some(exporter), Some(layer.with_filter(only_operations)))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(spans)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))?;
    Ok(exporter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert!(parse_cidr("10.77.0.0/16").is_ok());
        assert!(parse_cidr("192.168.4.0/30").is_ok());
        for bad in [
            "10.77.0.0",
            "10.77.0.0/31",
            "10.77.0/16",
            "fd00::/64",
            "/16",
            "10.0.0.0/x",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad} accepted");
        }
    }
}
