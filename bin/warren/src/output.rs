//! What the CLI prints: tables and `key: value` blocks for people, one JSON
//! document per result with `--json`. Results go to stdout; notes and
//! progress go to stderr and are silenced by `--quiet`.

use std::io::{self, Write};

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Writing to the CLI's own stdout or stderr failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write to stdout")]
    Stdout(#[source] io::Error),
    #[error("cannot write to stderr")]
    Stderr(#[source] io::Error),
}

impl OutputError {
    /// The reader went away (`warren ls | head -1`): not worth a message.
    pub fn is_closed_pipe(&self) -> bool {
        let (Self::Stdout(e) | Self::Stderr(e)) = self;
        e.kind() == io::ErrorKind::BrokenPipe
    }
}

/// Writes raw bytes to stdout and flushes them.
pub fn write_stdout(bytes: &[u8]) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(OutputError::Stdout)
}

/// Writes raw bytes to stderr and flushes them.
pub fn write_stderr(bytes: &[u8]) -> Result<(), OutputError> {
    let mut err = io::stderr().lock();
    err.write_all(bytes)
        .and_then(|()| err.flush())
        .map_err(OutputError::Stderr)
}

/// How to print, from the global flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

impl Output {
    /// Prints `value` as one line of JSON on stdout.
    pub fn json<T: Serialize>(&self, value: &T) -> Result<(), OutputError> {
        let mut line =
            serde_json::to_vec(value).map_err(|e| OutputError::Stdout(io::Error::other(e)))?;
        line.push(b'\n');
        write_stdout(&line)
    }

    /// Prints a line on stdout.
    pub fn line(&self, text: &str) -> Result<(), OutputError> {
        write_stdout(format!("{text}\n").as_bytes())
    }

    /// Prints a note on stderr unless `--quiet`.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            // Nothing useful can be done if stderr is gone.
            let _ = writeln!(io::stderr().lock(), "{text}");
        }
    }

    /// Prints `error: TEXT` on stderr, even with `--quiet`.
    pub fn error(&self, text: &str) {
        // Nothing useful can be done if stderr is gone.
        let _ = writeln!(io::stderr().lock(), "error: {text}");
    }

    /// Prints a table with a header row on stdout.
    pub fn table(&self, header: &[&str], rows: Vec<Vec<String>>) -> Result<(), OutputError> {
        let mut table = Table::new();
        table
            .load_preset(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(header.to_vec());
        for row in rows {
            table.add_row(row);
        }
        // comfy-table pads the first column with a space: trim each line.
        let text: String = table.lines().map(|l| format!("{}\n", l.trim())).collect();
        write_stdout(text.as_bytes())
    }

    /// Prints aligned `key: value` lines on stdout.
    pub fn fields(&self, fields: &[(&str, String)]) -> Result<(), OutputError> {
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        let text: String = fields
            .iter()
            .map(|(k, v)| format!("{:<width$}  {v}\n", format!("{k}:")))
            .collect();
        write_stdout(text.as_bytes())
    }
}

/// Unix milliseconds as RFC 3339 (UTC, millisecond precision).
pub fn unix_ms_rfc3339(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// `2m ago`, `in 4m`, `just now`; the input unchanged if it is not RFC 3339.
pub fn relative_time(rfc3339: &str, now: OffsetDateTime) -> String {
    let Ok(t) = OffsetDateTime::parse(rfc3339, &Rfc3339) else {
        return rfc3339.to_owned();
    };
    let secs = (t - now).whole_seconds();
    let span = short_duration(secs.unsigned_abs());
    match secs {
        -4..=4 => "just now".to_owned(),
        s if s < 0 => format!("{span} ago"),
        _ => format!("in {span}"),
    }
}

/// `45s`, `12m`, `3h`, `2d`: the largest unit, rounded down.
pub fn short_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `317.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Memory given in MiB: `512 MiB`, `2 GiB`.
pub fn human_mib(mib: u32) -> String {
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        // 2026-01-01T12:00:00Z
        let now = OffsetDateTime::from_unix_timestamp(1_767_268_800).unwrap();
        assert_eq!(relative_time("2026-01-01T11:58:00Z", now), "2m ago");
        assert_eq!(relative_time("2026-01-01T12:05:00Z", now), "in 5m");
        assert_eq!(relative_time("2026-01-01T12:00:01Z", now), "just now");
        assert_eq!(relative_time("2025-12-30T12:00:00+00:00", now), "2d ago");
        assert_eq!(relative_time("yesterday", now), "yesterday");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(human_mib(512), "512 MiB");
        assert_eq!(human_mib(2048), "2 GiB");
    }
}
