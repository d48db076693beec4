//! The start command's output, kept for `GET /logs?start=MS` (which also
//! serves the agent's own lines, `crate::agent_log`).
//!
//! The process started with the tag [`START_COMMAND_TAG`] (a template's
//! start command) has its output split into lines and kept here, newest
//! last, at most [`MAX_LINES`] lines of at most [`MAX_LINE`] bytes each (a
//! longer line is cut there). The book lives in the agent's memory, so a
//! snapshot carries it and a sandbox restored from a template snapshot
//! still shows what its start command printed when the image was made.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use warren_envd::http_api::LogLine;

use crate::state::Shared;

pub use warren_envd::http_api::START_COMMAND_TAG;

/// Lines kept.
pub const MAX_LINES: usize = 2000;
/// Bytes kept of one line.
pub const MAX_LINE: usize = 4096;

#[derive(Default)]
pub struct LogBook {
    inner: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    lines: VecDeque<LogLine>,
    /// An unfinished line per stream.
    pending: Vec<(&'static str, Vec<u8>)>,
}

impl LogBook {
    /// Adds a chunk of `stream`'s output.
    pub fn append(&self, stream: &'static str, chunk: &[u8]) {
        let mut book = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let at = match book.pending.iter().position(|(s, _)| *s == stream) {
            Some(i) => i,
            None => {
                book.pending.push((stream, Vec::new()));
                book.pending.len() - 1
            }
        };
        for &byte in chunk {
            if byte == b'\n' {
                let line = std::mem::take(&mut book.pending[at].1);
                book.push(stream, &line);
            } else if book.pending[at].1.len() < MAX_LINE {
                book.pending[at].1.push(byte);
            }
        }
    }

    /// The lines read at or after `start_ms`, oldest first.
    pub fn since(&self, start_ms: i64) -> Vec<LogLine> {
        let book = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        book.lines
            .iter()
            .filter(|l| l.timestamp_ms >= start_ms)
            .cloned()
            .collect()
    }
}

impl Book {
    fn push(&mut self, stream: &str, line: &[u8]) {
        if self.lines.len() == MAX_LINES {
            self.lines.pop_front();
        }
        let line = String::from_utf8_lossy(line);
        self.lines.push_back(LogLine {
            timestamp_ms: now_ms(),
            stream: stream.to_owned(),
            line: line.trim_end_matches('\r').to_owned(),
            level: "info".to_owned(),
        });
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[derive(Deserialize)]
pub struct LogsQuery {
    #[serde(default)]
    start: i64,
}

/// `GET /logs?start=MS`: the start command's lines and the agent's own
/// (`crate::agent_log`), oldest first.
pub async fn logs(State(state): State<Shared>, Query(q): Query<LogsQuery>) -> Json<Vec<LogLine>> {
    let mut lines = state.logs.since(q.start);
    lines.extend(crate::agent_log::since(q.start));
    lines.sort_by_key(|l| l.timestamp_ms);
    Json(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_become_lines_per_stream_and_the_book_stays_bounded() {
        let book = LogBook::default();
        book.append("stdout", b"hel");
        book.append("stderr", b"oops\n");
        book.append("stdout", b"lo\nsecond\r\npartial");
        let lines: Vec<_> = book
            .since(0)
            .into_iter()
            .map(|l| (l.stream, l.line))
            .collect();
        assert_eq!(
            lines,
            [
                ("stderr".to_owned(), "oops".to_owned()),
                ("stdout".to_owned(), "hello".to_owned()),
                ("stdout".to_owned(), "second".to_owned()),
            ]
        );
        assert!(book.since(i64::MAX).is_empty());

        let long = vec![b'x'; MAX_LINE * 2];
        book.append("stdout", &long);
        book.append("stdout", b"\n");
        for _ in 0..MAX_LINES {
            book.append("stdout", b"again\n");
        }
        let all = book.since(0);
        assert_eq!(all.len(), MAX_LINES);
        assert!(all.iter().all(|l| l.line == "again"));
        book.append("stdout", &long);
        book.append("stdout", b"\n");
        assert_eq!(book.since(0).last().unwrap().line.len(), MAX_LINE);
    }
}
