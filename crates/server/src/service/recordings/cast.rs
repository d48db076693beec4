//! Writing one asciicast v2 recording.
//!
//! A header line, then one JSON array a line: `[seconds, "o", text]` for
//! output and `[seconds, "r", "COLSxROWS"]` for a resize, seconds since the
//! start. Output is text: bytes split between two chunks are joined first,
//! and bytes that are no UTF-8 become U+FFFD. Past [`MAX_BYTES`] one marker
//! (`[seconds, "m", "…"]`) says the recording stopped, and nothing more is
//! written. The SHA-256 of every byte written is kept as it goes.

use std::path::PathBuf;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The most a recording holds.
pub const MAX_BYTES: u64 = 8 << 20;

/// A recording being written to its partial file.
pub struct CastWriter {
    file: tokio::io::BufWriter<tokio::fs::File>,
    partial: PathBuf,
    finished: PathBuf,
    started: Instant,
    written: u64,
    hasher: Sha256,
    /// The start of a UTF-8 sequence the next chunk completes.
    carry: Vec<u8>,
    stopped: bool,
}

/// A finished recording's size and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    pub sha256: String,
    /// Whether it reached [`MAX_BYTES`].
    pub truncated: bool,
}

/// Splits `bytes` (after `carry`) into text and the incomplete sequence at
/// its end, which is kept in `carry`.
fn take_text(carry: &mut Vec<u8>, bytes: &[u8]) -> String {
    carry.extend_from_slice(bytes);
    let mut out = String::new();
    let mut rest: &[u8] = carry;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                rest = &[];
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // UTF-8 up to there, as the error says.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[n..];
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    *carry = rest.to_vec();
    out
}

impl CastWriter {
    /// Creates the partial file and writes the header.
    pub(super) async fn create(
        partial: PathBuf,
        finished: PathBuf,
        header: &serde_json::Value,
    ) -> std::io::Result<Self> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .await?;
        let mut writer = Self {
            file: tokio::io::BufWriter::new(file),
            partial,
            finished,
            started: Instant::now(),
            written: 0,
            hasher: Sha256::new(),
            carry: Vec::new(),
            stopped: false,
        };
        writer.line(header).await?;
        Ok(writer)
    }

    async fn line(&mut self, value: &serde_json::Value) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(value).unwrap_or_default();
        line.push(b'\n');
        self.hasher.update(&line);
        self.written += line.len() as u64;
        self.file.write_all(&line).await
    }

    async fn event(&mut self, code: &str, data: &str) -> std::io::Result<()> {
        if self.stopped {
            return Ok(());
        }
        let at = (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e6;
        let event = serde_json::json!([at, code, data]);
        let size = serde_json::to_vec(&event)
            .map(|v| v.len() as u64 + 1)
            .unwrap_or(0);
        if self.written + size > MAX_BYTES {
            self.stopped = true;
            let note = format!("recording stopped at its limit of {} MiB", MAX_BYTES >> 20);
            return self.line(&serde_json::json!([at, "m", note])).await;
        }
        self.line(&event).await
    }

    /// Records terminal output.
    pub async fn output(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let text = take_text(&mut self.carry, bytes);
        if text.is_empty() {
            return Ok(());
        }
        self.event("o", &text).await
    }

    /// Records a resize.
    pub async fn resize(&mut self, cols: u16, rows: u16) -> std::io::Result<()> {
        self.event("r", &format!("{cols}x{rows}")).await
    }

    /// Flushes and syncs the file and moves it into place.
    pub async fn finish(mut self) -> std::io::Result<Written> {
        if !self.carry.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.carry)).into_owned();
            self.event("o", &rest).await?;
        }
        self.file.flush().await?;
        self.file.get_ref().sync_all().await?;
        tokio::fs::rename(&self.partial, &self.finished).await?;
        Ok(Written {
            bytes: self.written,
            sha256: hex::encode(self.hasher.finalize()),
            truncated: self.stopped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sequences_are_joined_and_bad_bytes_replaced() {
        let mut carry = Vec::new();
        let euro = "€".as_bytes();
        assert_eq!(take_text(&mut carry, &[b'a', euro[0]]), "a");
        assert_eq!(take_text(&mut carry, &euro[1..]), "€");
        assert!(carry.is_empty());
        assert_eq!(take_text(&mut carry, b"x\xffy"), "x\u{fffd}y");
        assert_eq!(take_text(&mut carry, b""), "");
    }

    #[tokio::test]
    async fn a_recording_is_a_header_and_events_and_stops_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let header = serde_json::json!({"version": 2, "width": 80, "height": 24});
        let mut w = CastWriter::create(
            dir.path().join("r.cast.partial"),
            dir.path().join("r.cast"),
            &header,
        )
        .await
        .unwrap();
        w.output(b"hi\r\n").await.unwrap();
        w.resize(100, 30).await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..200 {
            w.output(&chunk).await.unwrap();
        }
        let written = w.finish().await.unwrap();
        assert!(written.truncated);
        assert!(!dir.path().join("r.cast.partial").exists());
        let text = std::fs::read(dir.path().join("r.cast")).unwrap();
        assert_eq!(text.len() as u64, written.bytes);
        assert!(written.bytes <= MAX_BYTES + 200);
        assert_eq!(written.sha256, hex::encode(Sha256::digest(&text)));
        let lines: Vec<serde_json::Value> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines[0], header);
        assert_eq!(lines[1][1], "o");
        assert_eq!(lines[1][2], "hi\r\n");
        assert_eq!(lines[2][2], "100x30");
        assert_eq!(lines.last().unwrap()[1], "m");
    }
}
