//! Messages of the `process.Process` service (envd `process/process.proto`).
//!
//! Methods: `Start` and `Connect` (server streams of [`ProcessEvent`]s wrapped
//! in [`StartResponse`]/[`ConnectResponse`]), `StreamInput` (client stream of
//! [`StreamInputRequest`]s), and the unary `List`, `SendInput`, `CloseStdin`,
//! `SendSignal` and `Update`. A oneof-only message is a Rust enum whose JSON
//! is the single present field, e.g. `{"start":{"pid":7}}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{self, proto_enum};

/// The service name used in procedure paths.
pub const SERVICE: &str = "process.Process";

proto_enum! {
    /// A signal the caller may send.
    pub enum Signal {
        Unspecified = 0 => "SIGNAL_UNSPECIFIED",
        Sigterm = 15 => "SIGNAL_SIGTERM",
        Sigkill = 9 => "SIGNAL_SIGKILL",
    }
}

/// Terminal size in character cells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PtySize {
    #[serde(with = "json::int32")]
    pub cols: u32,
    #[serde(with = "json::int32")]
    pub rows: u32,
}

/// Pseudo-terminal settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pty {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<PtySize>,
}

/// What to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessConfig {
    #[serde(deserialize_with = "json::null_default")]
    pub cmd: String,
    #[serde(deserialize_with = "json::null_default")]
    pub args: Vec<String>,
    #[serde(deserialize_with = "json::null_default")]
    pub envs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// Selects a running process by pid or by tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProcessSelector {
    Pid(#[serde(with = "json::int32")] u32),
    Tag(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListRequest {}

/// A running process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ProcessConfig>,
    #[serde(with = "json::int32")]
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListResponse {
    #[serde(deserialize_with = "json::null_default")]
    pub processes: Vec<ProcessInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pty: Option<Pty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Keep stdin open for `SendInput`; when false stdin is `/dev/null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pty: Option<Pty>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateResponse {}

/// The first event of every process stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartEvent {
    #[serde(with = "json::int32")]
    pub pid: u32,
    /// Warren's: data events before a re-attach's `replayFrom` that were
    /// no longer kept (0, and absent, otherwise).
    #[serde(rename = "replayLost", skip_serializing_if = "is_zero")]
    pub replay_lost: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A chunk of output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DataEvent {
    Stdout(#[serde(with = "json::b64")] Vec<u8>),
    Stderr(#[serde(with = "json::b64")] Vec<u8>),
    Pty(#[serde(with = "json::b64")] Vec<u8>),
}

/// The last event of a process stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EndEvent {
    /// The exit code, or -1 when the process was killed by a signal.
    #[serde(with = "json::int32")]
    pub exit_code: i32,
    /// True when the process called exit (not killed by a signal).
    #[serde(deserialize_with = "json::null_default")]
    pub exited: bool,
    /// Human-readable, e.g. `exit status 1` or `signal: killed`.
    #[serde(deserialize_with = "json::null_default")]
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeepAlive {}

/// One event of a process stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProcessEvent {
    Start(StartEvent),
    Data(DataEvent),
    End(EndEvent),
    Keepalive(KeepAlive),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<ProcessEvent>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<ProcessEvent>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSelector>,
    /// Warren's: replay the kept data events from this number on (the
    /// count of data events the caller received) before the live ones.
    #[serde(rename = "replayFrom", skip_serializing_if = "Option::is_none")]
    pub replay_from: Option<u64>,
}

/// Input for a process: stdin bytes, or keystrokes for its PTY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProcessInput {
    Stdin(#[serde(with = "json::b64")] Vec<u8>),
    Pty(#[serde(with = "json::b64")] Vec<u8>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SendInputRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<ProcessInput>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SendInputResponse {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInputStart {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSelector>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInputData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<ProcessInput>,
}

/// One message of the `StreamInput` client stream: `start` first, then data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StreamInputRequest {
    Start(StreamInputStart),
    Data(StreamInputData),
    Keepalive(KeepAlive),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInputResponse {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SendSignalRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSelector>,
    pub signal: Signal,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SendSignalResponse {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloseStdinRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSelector>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloseStdinResponse {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn start_request_as_the_sdk_sends_it() {
        let wire = json!({
            "process": {"cmd": "/bin/bash", "args": ["-l", "-c", "echo hi"],
                        "envs": {"A": "1"}, "cwd": "/tmp"},
            "stdin": false,
            "tag": "t1",
            "pty": {"size": {"cols": 80, "rows": "24"}}
        });
        let req: StartRequest = serde_json::from_value(wire).unwrap();
        let process = req.process.unwrap();
        assert_eq!(process.cmd, "/bin/bash");
        assert_eq!(process.args, ["-l", "-c", "echo hi"]);
        assert_eq!(process.envs.get("A").map(String::as_str), Some("1"));
        assert_eq!(process.cwd.as_deref(), Some("/tmp"));
        assert_eq!(req.stdin, Some(false));
        assert_eq!(req.pty.unwrap().size, Some(PtySize { cols: 80, rows: 24 }));
    }

    #[test]
    fn absent_and_null_fields_default() {
        let req: StartRequest =
            serde_json::from_value(json!({"process": {"cmd": "ls", "args": null}})).unwrap();
        assert_eq!(req.process.unwrap().args, Vec::<String>::new());
        assert_eq!(req.pty, None);
        let end: EndEvent = serde_json::from_value(json!({})).unwrap();
        assert_eq!(end, EndEvent::default());
    }

    #[test]
    fn events_are_single_field_oneofs() {
        let start = StartResponse {
            event: Some(ProcessEvent::Start(StartEvent {
                pid: 42,
                replay_lost: 0,
            })),
        };
        assert_eq!(
            serde_json::to_value(&start).unwrap(),
            json!({"event": {"start": {"pid": 42}}})
        );
        let data = ProcessEvent::Data(DataEvent::Stdout(b"hi\n".to_vec()));
        assert_eq!(
            serde_json::to_value(&data).unwrap(),
            json!({"data": {"stdout": "aGkK"}})
        );
        let end = ProcessEvent::End(EndEvent {
            exit_code: -1,
            exited: false,
            status: "signal: killed".into(),
            error: None,
        });
        assert_eq!(
            serde_json::to_value(&end).unwrap(),
            json!({"end": {"exitCode": -1, "exited": false, "status": "signal: killed"}})
        );
        let keep: ConnectResponse =
            serde_json::from_value(json!({"event": {"keepalive": {}}})).unwrap();
        assert_eq!(keep.event, Some(ProcessEvent::Keepalive(KeepAlive {})));
    }

    #[test]
    fn signal_enum_by_name_or_number() {
        let by_name: SendSignalRequest =
            serde_json::from_value(json!({"process": {"pid": 3}, "signal": "SIGNAL_SIGKILL"}))
                .unwrap();
        assert_eq!(by_name.signal, Signal::Sigkill);
        assert_eq!(by_name.process, Some(ProcessSelector::Pid(3)));
        let by_number: SendSignalRequest = serde_json::from_value(json!({"signal": 15})).unwrap();
        assert_eq!(by_number.signal, Signal::Sigterm);
        assert_eq!(
            serde_json::to_value(Signal::Sigterm).unwrap(),
            json!("SIGNAL_SIGTERM")
        );
        assert!(serde_json::from_value::<SendSignalRequest>(json!({"signal": "SIGHUP"})).is_err());
    }

    #[test]
    fn input_bytes_are_base64() {
        let req: SendInputRequest = serde_json::from_value(
            json!({"process": {"tag": "x"}, "input": {"pty": "ZWNobyBoaQo="}}),
        )
        .unwrap();
        assert_eq!(req.input, Some(ProcessInput::Pty(b"echo hi\n".to_vec())));
        let stream: StreamInputRequest =
            serde_json::from_value(json!({"data": {"input": {"stdin": "YQ=="}}})).unwrap();
        assert_eq!(
            stream,
            StreamInputRequest::Data(StreamInputData {
                input: Some(ProcessInput::Stdin(b"a".to_vec()))
            })
        );
    }
}
