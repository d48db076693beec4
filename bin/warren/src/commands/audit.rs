//! `warren audit`: verify, checkpoint, list and export the audit log.
//!
//! `verify` trusts nothing the daemon says: it fetches the signed heads and
//! the whole export and recomputes every hash locally
//! (`warren_audit::verify_log`). The public key comes from the daemon, or,
//! with `--checkpoint`, from the checkpoint file, and then the daemon's key
//! must be the same. A checkpoint is a signed head saved earlier together
//! with the key: the current log must contain it (a log rolled back below
//! it, or rewritten, fails).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use warren_audit::{ExportedEntry, SignedTreeHead, VerifyError, VerifyingKey, verify_log};

use super::Ctx;
use crate::{exit, parse};

/// The `format` member of a checkpoint file.
const CHECKPOINT_FORMAT: &str = "warren-audit-checkpoint/v1";

/// Verify, checkpoint, list and export the tamper-evident audit log.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the whole log against its signed heads, locally.
    #[command(after_help = "\
Fetches every entry and signed head and recomputes all hashes here. Exits 1
and names the first bad index when an entry was edited, deleted, reordered,
or the log was rolled back below a head (or below the checkpoint).

Examples:
  warren audit verify
  warren audit checkpoint today.json   # save this somewhere Warren cannot write
  warren audit verify --checkpoint today.json --json")]
    Verify {
        /// A checkpoint saved earlier with `warren audit checkpoint`: the log
        /// must extend it, and be signed by its key.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Save the latest signed head and the public key (to FILE, else stdout).
    #[command(
        after_help = "Examples:\n  warren audit checkpoint /mnt/auditor/warren-$(date +%F).json"
    )]
    Checkpoint {
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// List entries, oldest first.
    #[command(after_help = "\
Examples:
  warren audit ls --sandbox $ID
  warren audit ls --action process.exec --since 2026-12-01T00:00:00Z --json")]
    Ls(Filters),
    /// Write the log as JSON lines (the export format of docs/audit.md) to stdout.
    #[command(after_help = "Examples:\n  warren audit export > audit.jsonl")]
    Export(Filters),
}

#[derive(Debug, clap::Args)]
struct Filters {
    /// Only entries about this sandbox.
    #[arg(long, value_name = "ID", value_parser = parse::sandbox_id)]
    sandbox: Option<warren_core::SandboxId>,
    /// Only entries with this actor in their chain, e.g. user:<id> or sandbox:<id>.
    #[arg(long)]
    actor: Option<String>,
    /// Only entries with this action, e.g. process.exec.
    #[arg(long)]
    action: Option<String>,
    /// Only entries at or after this time (RFC 3339 or Unix milliseconds).
    #[arg(long)]
    since: Option<String>,
    /// Only entries before this time (RFC 3339 or Unix milliseconds).
    #[arg(long)]
    until: Option<String>,
    /// At most this many entries (ls: default 100, at most 1000).
    #[arg(long)]
    limit: Option<u64>,
    /// Only entries after this index (paging).
    #[arg(long)]
    after: Option<u64>,
}

impl Filters {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        let fields = [
            ("sandbox", self.sandbox.as_ref().map(ToString::to_string)),
            ("actor", self.actor.clone()),
            ("action", self.action.clone()),
            ("since", self.since.clone()),
            ("until", self.until.clone()),
            ("limit", self.limit.map(|n| n.to_string())),
            ("after", self.after.map(|n| n.to_string())),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                q.push((name, v));
            }
        }
        q
    }
}

/// A signed head saved outside Warren, with the key that signed it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always `warren-audit-checkpoint/v1`.
    pub format: String,
    /// The daemon it was taken from, for people.
    pub daemon: String,
    /// Ed25519 public key, 64 hex digits.
    pub public_key: String,
    pub head: SignedTreeHead,
}

/// The outcome of a verification, as `--json` prints it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Report {
    pub ok: bool,
    pub entries: u64,
    pub heads: usize,
    /// Size of the largest verified head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_size: Option<u64>,
    pub public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn parse_key(hex_key: &str, whose: &str) -> anyhow::Result<VerifyingKey> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut bytes)
        .with_context(|| format!("{whose} public key is not 64 hex digits"))?;
    VerifyingKey::from_bytes(&bytes)
        .with_context(|| format!("{whose} public key is not an Ed25519 key"))
}

/// Verifies `entries` against `heads` (and the checkpoint's head), with the
/// checkpoint's key when there is one, which the daemon's must equal.
pub fn verify(
    entries: &[ExportedEntry],
    mut heads: Vec<SignedTreeHead>,
    daemon_key: &str,
    checkpoint: Option<&Checkpoint>,
) -> anyhow::Result<Report> {
    let key_hex = match checkpoint {
        Some(cp) => {
            if !cp.public_key.eq_ignore_ascii_case(daemon_key) {
                bail!(
                    "the daemon signs with key {daemon_key}, the checkpoint was signed with {}: this is not the log the checkpoint was taken from, or its key was replaced",
                    cp.public_key
                );
            }
            heads.push(cp.head.clone());
            cp.public_key.clone()
        }
        None => daemon_key.to_owned(),
    };
    let key = parse_key(
        &key_hex,
        if checkpoint.is_some() {
            "the checkpoint's"
        } else {
            "the daemon's"
        },
    )?;
    let mut report = Report {
        ok: true,
        entries: entries.len() as u64,
        heads: heads.len(),
        signed_size: None,
        public_key: key_hex,
        first_bad_index: None,
        error: None,
    };
    match verify_log(entries, &heads, &key) {
        Ok(v) => report.signed_size = v.latest_head.map(|h| h.size),
        Err(e) => {
            report.ok = false;
            report.first_bad_index = e.first_bad_index();
            report.error = Some(describe(&e));
        }
    }
    Ok(report)
}

fn describe(e: &VerifyError) -> String {
    warren_core::error::chain(e)
}

fn read_checkpoint(path: &Path) -> anyhow::Result<Checkpoint> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let cp: Checkpoint = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Warren audit checkpoint", path.display()))?;
    if cp.format != CHECKPOINT_FORMAT {
        bail!(
            "{} has format {:?}, expected {CHECKPOINT_FORMAT}",
            path.display(),
            cp.format
        );
    }
    Ok(cp)
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    match args.command {
        AuditCommand::Verify { checkpoint } => run_verify(ctx, checkpoint.as_deref()).await,
        AuditCommand::Checkpoint { file } => checkpoint(ctx, file.as_deref()).await,
        AuditCommand::Ls(filters) => ls(ctx, &filters).await,
        AuditCommand::Export(filters) => {
            let bytes = ctx.client()?.audit_export_bytes(&filters.query()).await?;
            crate::output::write_stdout(&bytes)?;
            Ok(exit::OK)
        }
    }
}

async fn run_verify(ctx: &Ctx, checkpoint: Option<&Path>) -> anyhow::Result<i32> {
    let checkpoint = checkpoint.map(read_checkpoint).transpose()?;
    let client = ctx.client()?;
    // Heads first: every head fetched is then covered by the export.
    let heads = client.audit_heads(true).await?;
    let entries = client.audit_export().await?;
    let report = verify(
        &entries,
        heads.heads,
        &heads.public_key,
        checkpoint.as_ref(),
    )?;
    if ctx.out.json {
        ctx.out.json(&report)?;
    } else if report.ok {
        let signed = report.signed_size.unwrap_or(0);
        ctx.out.line(&format!(
            "ok: {} entries verified against {} signed heads (key {})",
            report.entries, report.heads, report.public_key
        ))?;
        if report.entries > signed {
            ctx.out.note(&format!(
                "entries from index {signed} on are not covered by a signed head yet (heads are signed every second)"
            ));
        }
        if checkpoint.is_none() {
            ctx.out.note("the key came from the daemon; pass --checkpoint to check against a key and head saved elsewhere");
        }
    } else {
        let at = report
            .first_bad_index
            .map_or_else(String::new, |i| format!(" at index {i}"));
        ctx.out.error(&format!(
            "audit log verification failed{at}: {}",
            report.error.as_deref().unwrap_or("unknown")
        ));
    }
    Ok(if report.ok { exit::OK } else { exit::FAILURE })
}

async fn checkpoint(ctx: &Ctx, file: Option<&Path>) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    let heads = client.audit_heads(false).await?;
    let Some(head) = heads.heads.into_iter().next_back() else {
        bail!("the audit log has no signed head yet; retry in a second");
    };
    let key = parse_key(&heads.public_key, "the daemon's")?;
    head.verify(&key)
        .context("the daemon's latest head does not verify with its own key")?;
    let cp = Checkpoint {
        format: CHECKPOINT_FORMAT.to_owned(),
        daemon: client.base_url().to_owned(),
        public_key: heads.public_key,
        head,
    };
    let text = serde_json::to_string_pretty(&cp)? + "\n";
    match file {
        None => crate::output::write_stdout(text.as_bytes())?,
        Some(path) => {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &text)
                .and_then(|()| std::fs::rename(&tmp, path))
                .with_context(|| format!("cannot write checkpoint {}", path.display()))?;
            ctx.out.note(&format!(
                "checkpoint of {} entries saved to {}",
                cp.head.size,
                path.display()
            ));
        }
    }
    Ok(exit::OK)
}

async fn ls(ctx: &Ctx, filters: &Filters) -> anyhow::Result<i32> {
    let list = ctx.client()?.audit_entries(&filters.query()).await?;
    if ctx.out.json {
        ctx.out.json(&list)?;
        return Ok(exit::OK);
    }
    if list.entries.is_empty() {
        ctx.out.note("no audit entries");
        return Ok(exit::OK);
    }
    let rows = list
        .entries
        .into_iter()
        .map(|l| {
            let e = l.entry;
            vec![
                e.index.to_string(),
                crate::output::unix_ms_rfc3339(e.time_ms),
                e.actor.join(">"),
                e.action,
                e.target,
                e.outcome,
            ]
        })
        .collect();
    ctx.out.table(
        &["INDEX", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME"],
        rows,
    )?;
    if let Some(after) = list.next_after {
        ctx.out.note(&format!("more entries: pass --after {after}"));
    }
    Ok(exit::OK)
}
