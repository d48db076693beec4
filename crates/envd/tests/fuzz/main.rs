//! Fuzz targets for the envd wire protocol: the Connect envelope and every
//! JSON message either side of it reads (the agent reads requests from the
//! daemon; the daemon reads answers from inside the sandbox, untrusted).
//! Budget and reproduction: see the `warren-fuzz` crate.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use warren_envd::envelope::{self, FrameDecoder};
use warren_envd::{filesystem as fs, http_api, process as proc};
use warren_fuzz::{Target, corpus_dir};

/// Largest frame the targets accept (small, so mutated lengths hit it).
const MAX_FRAME: usize = 4096;

fn target(name: &str) -> Target {
    Target::new(name, corpus_dir(env!("CARGO_MANIFEST_DIR"), name))
}

/// Parses `bytes` as a `T`; whatever parses must encode, and its encoding
/// must parse back to the same value.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(bytes) else {
        return;
    };
    let encoded = serde_json::to_vec(&value)
        .unwrap_or_else(|e| panic!("{value:?} parsed but does not encode: {e}"));
    let back: T = serde_json::from_slice(&encoded).unwrap_or_else(|e| {
        panic!(
            "encoding {} of {value:?} does not parse: {e}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(
        back,
        value,
        "round trip through {}",
        String::from_utf8_lossy(&encoded)
    );
}

/// Every message type of the protocol, parsed from `bytes`.
fn every_message(bytes: &[u8]) {
    round_trip::<proc::StartRequest>(bytes);
    round_trip::<proc::StartResponse>(bytes);
    round_trip::<proc::ConnectRequest>(bytes);
    round_trip::<proc::ConnectResponse>(bytes);
    round_trip::<proc::ListRequest>(bytes);
    round_trip::<proc::ListResponse>(bytes);
    round_trip::<proc::UpdateRequest>(bytes);
    round_trip::<proc::SendInputRequest>(bytes);
    round_trip::<proc::StreamInputRequest>(bytes);
    round_trip::<proc::SendSignalRequest>(bytes);
    round_trip::<proc::CloseStdinRequest>(bytes);
    round_trip::<fs::PathRequest>(bytes);
    round_trip::<fs::EntryResponse>(bytes);
    round_trip::<fs::MoveRequest>(bytes);
    round_trip::<fs::ListDirRequest>(bytes);
    round_trip::<fs::ListDirResponse>(bytes);
    round_trip::<fs::WatchDirRequest>(bytes);
    round_trip::<fs::WatchDirResponse>(bytes);
    round_trip::<fs::CreateWatcherResponse>(bytes);
    round_trip::<fs::WatcherRequest>(bytes);
    round_trip::<fs::GetWatcherEventsResponse>(bytes);
    round_trip::<http_api::InitRequest>(bytes);
    round_trip::<http_api::LogLine>(bytes);
    round_trip::<http_api::WriteInfo>(bytes);
    round_trip::<http_api::HttpError>(bytes);
}

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "null",
    "true",
    "false",
    "-1",
    "1e309",
    "4294967296",
    "\"9223372036854775808\"",
    "\"-2147483649\"",
    "\"pid\"",
    "\"tag\"",
    "\"process\"",
    "\"cmd\"",
    "\"args\"",
    "\"envs\"",
    "\"stdin\"",
    "\"pty\"",
    "\"event\"",
    "\"start\"",
    "\"data\"",
    "\"end\"",
    "\"keepalive\"",
    "\"stdout\"",
    "\"signal\"",
    "\"SIGNAL_SIGKILL\"",
    "\"path\"",
    "\"depth\"",
    "\"type\"",
    "\"size\"",
    "\"mode\"",
    "\"modifiedTime\"",
    "\"1970-01-01T00:00:00Z\"",
    "\"9999-12-31T23:59:59.999999999-23:59\"",
    "\"0000-01-01T00:00:00+23:59\"",
    "\"AAAA\"",
    "\"=\"",
    "\\u0000",
    "\\ud800",
    "\"envVars\"",
    "\"timestamp\"",
    "\"entries\"",
    "\"events\"",
    "\"watcherId\"",
];

#[test]
fn fuzz_envd_json_messages() {
    target("envd_json_messages")
        .tokens(JSON_TOKENS)
        .run(every_message);
}

/// The first byte picks the chunk size the rest arrives in, so frames are
/// split at every kind of boundary.
fn decode_chunked(input: &[u8]) {
    let Some((&chunk, wire)) = input.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let mut reencoded = Vec::new();
    let mut failed = false;
    'feed: for part in wire.chunks(chunk) {
        decoder.push(part);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.payload.len() <= MAX_FRAME);
                    if frame.is_end_stream() {
                        let _ = frame.end_stream();
                    } else {
                        every_message(&frame.payload);
                    }
                    reencoded.extend_from_slice(
                        &envelope::encode_frame(frame.flags, &frame.payload).unwrap(),
                    );
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = e.to_connect();
                    failed = true;
                    break 'feed;
                }
            }
        }
    }
    // Decoded frames are exactly the bytes they came from.
    assert_eq!(&wire[..reencoded.len()], &reencoded[..]);
    if !failed && decoder.finish().is_ok() {
        assert_eq!(reencoded.len(), wire.len());
    }
}

#[test]
fn fuzz_connect_envelope() {
    let start = proc::StartRequest {
        process: Some(proc::ProcessConfig {
            cmd: "/bin/sh".into(),
            args: vec!["-c".into(), "echo hi".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut stream = vec![7u8];
    stream.extend_from_slice(&envelope::message_frame(&start).unwrap());
    stream.extend_from_slice(&envelope::end_frame(None));
    target("connect_envelope")
        .seed(stream)
        .tokens(JSON_TOKENS)
        .tokens([
            &[0u8, 0, 0, 0, 2, b'{', b'}'][..],
            &[2, 0, 0, 0, 0],
            &[1, 0, 0, 0, 0],
        ])
        .run(decode_chunked);
}
