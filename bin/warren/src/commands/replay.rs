//! `warren replay`: a sandbox's story (its timeline, then its recorded
//! terminal sessions), or one terminal session played back.

use std::io::IsTerminal;
use std::time::Duration;

use serde_json::Value;
use warren_core::{RecordingId, SandboxId};

use super::Ctx;
use crate::output::{self, human_bytes};
use crate::{exit, parse};

/// Replay what happened in a sandbox: who created it, every command with
/// its exit code and duration, files written, terminals, pauses, wakes,
/// events, network denials and forks, then its recorded terminal sessions.
/// With RECORDING, play that terminal session back here.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Terminal sessions (`warren shell`, the dashboard's terminal) are recorded:
their output and resizes, never what was typed. They are kept 30 days,
the newest 50 a sandbox, killed sandboxes' too. Played into a terminal, a
session keeps its timing (pauses longer than --max-idle shortened);
piped, it is written at once. --json prints the story as JSON, or the
recording as its asciicast v2 file.

Examples:
  warren replay $ID
  warren replay $ID $RECORDING --speed 2
  warren replay $ID $RECORDING --json > session.cast")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// A recording id from the story, to play back.
    #[arg(value_name = "RECORDING", value_parser = parse::recording_id)]
    recording: Option<RecordingId>,
    /// Playback speed (2 = twice as fast).
    #[arg(long, default_value = "1", value_parser = parse::speed)]
    speed: f64,
    /// The longest pause kept between two outputs, in seconds.
    #[arg(long, default_value = "2", value_parser = parse::speed)]
    max_idle: f64,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    if let Some(recording) = &args.recording {
        let cast = client.recording(&args.id, recording).await?;
        if ctx.out.json {
            output::write_stdout(&cast)?;
            return Ok(exit::OK);
        }
        play(ctx, recording, &cast, args.speed, args.max_idle).await?;
        return Ok(exit::OK);
    }
    let timeline = client.timeline(&args.id).await?;
    let recordings = client.recordings(&args.id).await?;
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({
            "timeline": timeline,
            "recordings": recordings.recordings,
        }))?;
        return Ok(exit::OK);
    }
    for event in &timeline.events {
        let mark = if event.outcome == "ok" { " " } else { "!" };
        ctx.out
            .line(&format!("{}  {mark} {}", event.time, event.summary))?;
    }
    if recordings.recordings.is_empty() {
        ctx.out.note("no terminal sessions were recorded");
        return Ok(exit::OK);
    }
    ctx.out.line("")?;
    let rows = recordings
        .recordings
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.started_at.clone(),
                format!("{:.1}s", r.duration_s),
                format!("{}x{}", r.cols, r.rows),
                human_bytes(r.size_bytes) + if r.truncated { " (cut)" } else { "" },
                r.title.clone(),
            ]
        })
        .collect();
    ctx.out.table(
        &["RECORDING", "STARTED", "LENGTH", "TERMINAL", "SIZE", "RAN"],
        rows,
    )?;
    ctx.out
        .note(&format!("play one: warren replay {} RECORDING", args.id));
    Ok(exit::OK)
}

/// Writes the recording's output to stdout, keeping its timing when stdout
/// is a terminal.
async fn play(
    ctx: &Ctx,
    id: &RecordingId,
    cast: &[u8],
    speed: f64,
    max_idle: f64,
) -> anyhow::Result<()> {
    let mut lines = cast.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let header: Value = lines
        .next()
        .and_then(|l| serde_json::from_slice(l).ok())
        .ok_or_else(|| anyhow::anyhow!("recording {id} has no asciicast header"))?;
    let size = |k: &str| header.get(k).and_then(Value::as_u64).unwrap_or(0);
    ctx.out.note(&format!(
        "▶ recording {id}, a {}x{} terminal; Ctrl-C stops",
        size("width"),
        size("height")
    ));
    let timed = std::io::stdout().is_terminal();
    let mut last = 0.0_f64;
    for line in lines {
        let Ok(Value::Array(event)) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let at = event.first().and_then(Value::as_f64).unwrap_or(last);
        let code = event.get(1).and_then(Value::as_str).unwrap_or("");
        let data = event.get(2).and_then(Value::as_str).unwrap_or("");
        match code {
            "o" => {
                if timed {
                    let gap = (at - last).clamp(0.0, max_idle) / speed;
                    tokio::time::sleep(Duration::from_secs_f64(gap)).await;
                }
                output::write_stdout(data.as_bytes())?;
                last = at;
            }
            "m" => ctx.out.note(&format!("\n[{data}]")),
            _ => {}
        }
    }
    ctx.out.note("\n■ end of recording");
    Ok(())
}
