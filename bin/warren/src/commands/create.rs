//! `warren create`: start a sandbox and print its id.

use time::OffsetDateTime;
use warren_api_types::{CreateSandboxRequest, NetworkPolicy};
use warren_core::network::{Internet, NetRule};

use super::Ctx;
use crate::output::{human_mib, relative_time};
use crate::{exit, parse};

/// Start a new sandbox and print its id.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  warren create
  warren create --template base --cpus 2 --memory 1G --disk 20G --timeout 30m
  warren create --env OPENAI_BASE_URL=http://proxy --metadata owner=alice
  warren create --from-snapshot $SNAPSHOT_ID
  warren create --persistent --idle-timeout 10m
  warren create --allow github.com --allow '*.pypi.org' --deny 203.0.113.0/24
  warren create --internet                 every public destination
  warren create --persistent --wake 'github.*,ci.finished'
  warren create --on-event 'python3 /app/on_event.py'
  ID=$(warren create -q)")]
pub struct Args {
    /// Template to start from [default on the daemon: base].
    #[arg(short, long, value_name = "NAME")]
    template: Option<String>,
    /// CPU cores [default on the daemon: 1].
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,
    /// Memory limit: MiB (512) or with a unit (512M, 2G) [default on the daemon: 512].
    #[arg(long, value_name = "SIZE", value_parser = parse::memory_mib)]
    memory: Option<u32>,
    /// Disk limit for what the sandbox writes (root filesystem and /tmp):
    /// MiB (2048) or with a unit (512M, 20G) [default on the daemon: 10G].
    #[arg(long, alias = "disk-mb", value_name = "SIZE", value_parser = parse::memory_mib)]
    disk: Option<u32>,
    /// Time until the sandbox is killed: seconds (300) or 5m, 1h30m [default on the daemon: 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse::duration_secs)]
    timeout: Option<u64>,
    /// Environment variable for every process in the sandbox; repeatable.
    #[arg(short, long = "env", value_name = "KEY=VALUE", value_parser = parse::key_value)]
    env: Vec<(String, String)>,
    /// Label to filter listings by; repeatable.
    #[arg(short, long, value_name = "KEY=VALUE", value_parser = parse::key_value)]
    metadata: Vec<(String, String)>,
    /// Start from this snapshot (id) with its exact state, template and limits.
    #[arg(long, value_name = "SNAPSHOT_ID", conflicts_with_all = ["template", "cpus", "memory", "disk"])]
    from_snapshot: Option<String>,
    /// Keep state across idle gaps: idle sandboxes are paused, not killed.
    #[arg(long)]
    persistent: bool,
    /// Pause (with --persistent) or kill after this long without API calls.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration_secs)]
    idle_timeout: Option<u64>,
    /// How long a paused sandbox is kept [default on the daemon: 7 days].
    #[arg(long, value_name = "DURATION", value_parser = parse::duration_secs)]
    paused_ttl: Option<u64>,
    /// Do not resume a paused sandbox when an exec or file call arrives.
    #[arg(long)]
    no_auto_resume: bool,
    /// Allow every public destination the deny list does not name
    /// [default on the daemon: deny].
    #[arg(long)]
    internet: bool,
    /// Destination to allow: a CIDR (203.0.113.0/24) or a domain pattern
    /// (github.com, *.pypi.org); repeatable.
    #[arg(long, value_name = "RULE", value_parser = super::network::parse_rule)]
    allow: Vec<NetRule>,
    /// Destination to deny (wins over allow); repeatable.
    #[arg(long, value_name = "RULE", value_parser = super::network::parse_rule)]
    deny: Vec<NetRule>,
    /// Event types that resume the sandbox when it is paused, comma
    /// separated, prefixes ending in * (github.*); `none` for never
    /// [default: every event].
    #[arg(long, value_name = "PATTERNS")]
    wake: Option<String>,
    /// Shell command run inside for each event, in order, with the event's
    /// JSON on stdin; exit 0 acknowledges it.
    #[arg(long, value_name = "COMMAND")]
    on_event: Option<String>,
    /// Mount the team's volume NAME read-write at /path (repeatable, at
    /// most 8; see `warren volume`).
    #[arg(long, value_name = "NAME:/PATH", value_parser = super::volume::parse_mount)]
    volume: Vec<warren_api_types::VolumeMount>,
}

/// `--wake` as a policy: `none` is the empty list.
pub fn wake_policy(patterns: &str) -> warren_core::inbox::WakePolicy {
    let on = match patterns.trim() {
        "none" => Vec::new(),
        list => list
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
    };
    warren_core::inbox::WakePolicy { on }
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    let req = CreateSandboxRequest {
        template: args.template,
        cpus: args.cpus,
        memory_mb: args.memory,
        disk_mb: args.disk,
        timeout_s: args.timeout,
        env: parse::into_map(&args.env),
        metadata: parse::into_map(&args.metadata),
        snapshot: args.from_snapshot,
        persistent: args.persistent,
        idle_timeout_s: args.idle_timeout,
        on_idle: None,
        paused_ttl_s: args.paused_ttl,
        auto_resume: args.no_auto_resume.then_some(false),
        network: (args.internet || !args.allow.is_empty() || !args.deny.is_empty()).then(|| {
            NetworkPolicy {
                internet: if args.internet {
                    Internet::Allow
                } else {
                    Internet::Deny
                },
                allow: args.allow,
                deny: args.deny,
                ..NetworkPolicy::default()
            }
        }),
        wake: args.wake.as_deref().map(wake_policy),
        on_event: args.on_event.map(|cmd| warren_core::inbox::EventHandler {
            cmd: vec!["sh".to_owned(), "-c".to_owned(), cmd],
        }),
        volumes: args.volume,
    };
    let sandbox = client.create(&req).await?;
    if ctx.out.json {
        ctx.out.json(&sandbox)?;
    } else {
        ctx.out.line(&sandbox.id)?;
        ctx.out.note(&format!(
            "created sandbox {} from template {} ({} CPU, {} memory, {} disk), expires {}",
            sandbox.id,
            sandbox.template,
            sandbox.cpus,
            human_mib(sandbox.memory_mb),
            human_mib(sandbox.disk_mb),
            relative_time(&sandbox.expires_at, OffsetDateTime::now_utc()),
        ));
    }
    Ok(exit::OK)
}
