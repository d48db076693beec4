//! The agent's own log lines, kept for `GET /logs` beside the start
//! command's output.
//!
//! A `tracing` layer copies every event at `info` or above into a ring of
//! at most [`MAX_LINES`] lines of at most [`MAX_LINE`] bytes, as the
//! message followed by its fields (`key=value`), with the event's level and
//! the stream [`AGENT_STREAM`]. The ring is separate from the start
//! command's, so neither pushes the other's lines out. It lives in the
//! agent's memory: a snapshot carries it.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use warren_envd::http_api::{AGENT_STREAM, LogLine};

/// Lines kept.
pub const MAX_LINES: usize = 200;
/// Bytes kept of one line.
pub const MAX_LINE: usize = 1024;

fn ring() -> std::sync::MutexGuard<'static, VecDeque<LogLine>> {
    static RING: OnceLock<Mutex<VecDeque<LogLine>>> = OnceLock::new();
    RING.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The agent's lines at or after `start_ms`, oldest first.
pub fn since(start_ms: i64) -> Vec<LogLine> {
    ring()
        .iter()
        .filter(|l| l.timestamp_ms >= start_ms)
        .cloned()
        .collect()
}

fn push(level: &Level, mut line: String) {
    if line.len() > MAX_LINE {
        let mut end = MAX_LINE;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    let mut ring = ring();
    if ring.len() == MAX_LINES {
        ring.pop_front();
    }
    ring.push_back(LogLine {
        timestamp_ms: crate::logs::now_ms(),
        stream: AGENT_STREAM.to_owned(),
        line,
        level: level_name(level).to_owned(),
    });
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        _ => "info",
    }
}

/// The layer that keeps the agent's lines.
pub struct AgentLog;

impl<S: Subscriber> Layer<S> for AgentLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = event.metadata().level();
        if *level > Level::INFO {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        push(level, text.finish());
    }
}

/// An event as one line: the message, then `key=value` fields.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
            return;
        }
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{}={value}", field.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_at_info_and_above_become_bounded_lines_with_their_level() {
        let subscriber = tracing_subscriber::registry().with(AgentLog);
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("not kept");
            tracing::info!(addr = "0.0.0.0:49983", "serving envd");
            tracing::warn!(error = %"boom", "waitpid failed");
            let long = "x".repeat(MAX_LINE * 2);
            tracing::error!("{long}");
        });
        let lines = since(0);
        let mine: Vec<_> = lines
            .iter()
            .filter(|l| l.line.contains("serving envd") || l.line.contains("waitpid"))
            .map(|l| (l.level.as_str(), l.line.as_str()))
            .collect();
        assert_eq!(
            mine,
            [
                ("info", "serving envd addr=0.0.0.0:49983"),
                ("warn", "waitpid failed error=boom"),
            ]
        );
        assert!(lines.iter().all(|l| l.stream == AGENT_STREAM));
        assert!(!lines.iter().any(|l| l.line.contains("not kept")));
        let long = lines.iter().find(|l| l.level == "error").unwrap();
        assert_eq!(long.line.len(), MAX_LINE);

        for i in 0..MAX_LINES + 5 {
            push(&Level::INFO, format!("line {i}"));
        }
        let kept = since(0);
        assert_eq!(kept.len(), MAX_LINES);
        assert_eq!(kept.last().unwrap().line, format!("line {}", MAX_LINES + 4));
    }
}
