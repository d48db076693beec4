//! Terminal recordings: every interactive terminal (`GET
//! /v1/sandboxes/{id}/pty`) is recorded as an asciicast v2 file ([`cast`])
//! kept with the daemon's data, for replay in the dashboard and by
//! `warren replay`.
//!
//! Layout: `<data>/recordings/<sandbox>/<recording>.cast`, named
//! `<recording>.cast.partial` while its terminal is open.
//!
//! Invariants:
//! - only the terminal's output and its resizes are recorded, never what is
//!   typed into it (passwords at prompts);
//! - a recording is synced and renamed into place before the audit entry
//!   that names its SHA-256 (`pty.record`), so the digest names bytes on
//!   disk; a partial file a crash left is cut after its last whole line and
//!   kept, unaudited, at the next start;
//! - at most [`cast::MAX_BYTES`] a recording and [`MAX_PER_SANDBOX`] a
//!   sandbox (the oldest go first); any older than [`RETENTION`] is
//!   deleted, the sandbox alive or not (a killed sandbox's sessions stay
//!   replayable until then).

pub mod cast;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warren_api_types::Recording;
use warren_core::{RecordingId, SandboxId};

pub use cast::{CastWriter, Written};

/// Recordings kept per sandbox.
pub const MAX_PER_SANDBOX: usize = 50;
/// How long a recording is kept.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

const FINISHED: &str = "cast";
/// The most of a recording's head or tail read to describe it.
const EDGE: u64 = 1024 * 1024;
const PARTIAL: &str = "cast.partial";

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RecordingError + 'a {
    move |source| RecordingError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// The recordings of every sandbox of a daemon.
#[derive(Debug)]
pub struct Recordings {
    dir: PathBuf,
}

impl Recordings {
    /// Opens `dir`, keeping what a crash left half-written (see the module
    /// docs).
    pub fn new(dir: PathBuf) -> Self {
        let recordings = Self { dir };
        recordings.recover();
        recordings
    }

    fn sandbox_dir(&self, sandbox: &SandboxId) -> PathBuf {
        self.dir.join(sandbox.as_str())
    }

    /// Where a finished recording is.
    pub fn path(&self, sandbox: &SandboxId, id: &RecordingId) -> PathBuf {
        self.sandbox_dir(sandbox).join(format!("{id}.{FINISHED}"))
    }

    /// Starts recording a terminal of `sandbox` opened at `cols`×`rows`
    /// running `title`.
    pub async fn start(
        &self,
        sandbox: &SandboxId,
        cols: u16,
        rows: u16,
        title: &str,
    ) -> Result<(RecordingId, CastWriter), RecordingError> {
        let dir = self.sandbox_dir(sandbox);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io("creating", &dir))?;
        self.prune(sandbox, MAX_PER_SANDBOX - 1).await;
        let id = RecordingId::generate();
        let header = serde_json::json!({
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": OffsetDateTime::now_utc().unix_timestamp(),
            "title": title,
            "env": {"TERM": "xterm-256color"},
        });
        let partial = dir.join(format!("{id}.{PARTIAL}"));
        let writer = CastWriter::create(partial.clone(), self.path(sandbox, &id), &header)
            .await
            .map_err(io("creating", &partial))?;
        Ok((id, writer))
    }

    /// The finished recordings of `sandbox`, oldest first.
    pub async fn list(&self, sandbox: &SandboxId) -> Result<Vec<Recording>, RecordingError> {
        let dir = self.sandbox_dir(sandbox);
        tokio::task::spawn_blocking(move || list_blocking(&dir))
            .await
            .unwrap_or_else(|e| {
                Err(io("listing", Path::new("recordings"))(
                    std::io::Error::other(e),
                ))
            })
    }

    /// Keeps the newest `keep` recordings of `sandbox`.
    async fn prune(&self, sandbox: &SandboxId, keep: usize) {
        let Ok(mut listed) = self.list(sandbox).await else {
            return;
        };
        listed.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        let excess = listed.len().saturating_sub(keep);
        for old in listed.into_iter().take(excess) {
            if let Ok(id) = old.id.parse::<RecordingId>() {
                let _ = tokio::fs::remove_file(self.path(sandbox, &id)).await;
            }
        }
    }

    /// Deletes every finished recording last written before `before`;
    /// returns how many went.
    pub async fn collect(&self, before: SystemTime) -> usize {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            for file in files(&dir, FINISHED) {
                let old = std::fs::metadata(&file)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < before);
                if old && std::fs::remove_file(&file).is_ok() {
                    removed += 1;
                }
            }
            removed
        })
        .await
        .unwrap_or(0)
    }

    /// Cuts every partial file after its last whole line and keeps it.
    fn recover(&self) {
        for partial in files(&self.dir, PARTIAL) {
            let Ok(bytes) = std::fs::read(&partial) else {
                continue;
            };
            let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let name = partial.to_string_lossy();
            let finished = PathBuf::from(format!(
                "{}.{FINISHED}",
                name.trim_end_matches(&format!(".{PARTIAL}"))
            ));
            let kept = whole > 0
                && std::fs::write(&partial, &bytes[..whole]).is_ok()
                && std::fs::rename(&partial, &finished).is_ok();
            if !kept {
                let _ = std::fs::remove_file(&partial);
            }
            tracing::info!(file = %finished.display(), kept, "a terminal recording cut by a stop was recovered");
        }
    }
}

/// The files ending in `.{suffix}` one level under each sandbox directory
/// of `dir`.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let ending = format!(".{suffix}");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|sandbox| std::fs::read_dir(sandbox.path()).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.ends_with(&ending) && (suffix != FINISHED || !n.ends_with(PARTIAL))
            })
        })
        .collect()
}

fn list_blocking(dir: &Path) -> Result<Vec<Recording>, RecordingError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("listing", dir)(e)),
    };
    let mut out: Vec<Recording> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(&format!(".{FINISHED}"))?;
            id.parse::<RecordingId>().ok()?;
            describe(&e.path(), id)
        })
        .collect();
    out.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// A recording's entry from its header and its last event.
/// Only the file's head and tail are read (a recording is up to 8 MiB and
/// a listing names up to 50): no header or event line is longer than
/// [`EDGE`].
fn describe(path: &Path, id: &str) -> Option<Recording> {
    use std::io::{BufRead, Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let mut first = Vec::new();
    std::io::BufReader::new(&mut file)
        .take(EDGE)
        .read_until(b'\n', &mut first)
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&first).ok()?;
    file.seek(SeekFrom::Start(size.saturating_sub(EDGE))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let last: Option<serde_json::Value> = tail
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .and_then(|l| serde_json::from_slice(l).ok())
        .filter(|e: &serde_json::Value| e.is_array());
    let number = |key: &str| header.get(key).and_then(serde_json::Value::as_u64);
    let started = number("timestamp")
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t as i64).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    Some(Recording {
        id: id.to_owned(),
        started_at: started,
        cols: u16::try_from(number("width")?).ok()?,
        rows: u16::try_from(number("height")?).ok()?,
        title: header
            .get("title")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        size_bytes: size,
        duration_s: last
            .as_ref()
            .and_then(|e| e.get(0))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0),
        truncated: last
            .as_ref()
            .and_then(|e| e.get(1))
            .and_then(serde_json::Value::as_str)
            == Some("m"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recordings_are_listed_pruned_recovered_and_collected() {
        let dir = tempfile::tempdir().unwrap();
        let recordings = Recordings::new(dir.path().to_owned());
        let sandbox = SandboxId::generate();
        let (id, mut w) = recordings.start(&sandbox, 80, 24, "bash -l").await.unwrap();
        w.output(b"hello").await.unwrap();
        w.finish().await.unwrap();
        let listed = recordings.list(&sandbox).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, id.as_str());
        assert_eq!((listed[0].cols, listed[0].rows), (80, 24));
        assert_eq!(listed[0].title, "bash -l");
        assert!(!listed[0].truncated);

        // A partial file (a crash) is cut after its last whole line and kept.
        let (cut, mut w) = recordings.start(&sandbox, 80, 24, "top").await.unwrap();
        w.output(b"kept").await.unwrap();
        drop(w);
        let partial = dir
            .path()
            .join(sandbox.as_str())
            .join(format!("{cut}.{PARTIAL}"));
        let mut bytes = std::fs::read(&partial).unwrap();
        if bytes.is_empty() {
            bytes = b"{\"version\":2,\"width\":80,\"height\":24}\n".to_vec();
        }
        bytes.extend_from_slice(b"[0.5, \"o\", \"half");
        std::fs::write(&partial, &bytes).unwrap();
        let again = Recordings::new(dir.path().to_owned());
        let listed = again.list(&sandbox).await.unwrap();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(!partial.exists());
        let text = std::fs::read_to_string(again.path(&sandbox, &cut)).unwrap();
        assert!(text.ends_with('\n') && !text.contains("half"), "{text}");

        // Everything older than the cut-off goes.
        let future = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(again.collect(future).await, 2);
        assert!(again.list(&sandbox).await.unwrap().is_empty());
    }
}
