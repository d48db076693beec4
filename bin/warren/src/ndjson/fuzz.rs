//! Fuzz target for the decoder of `application/x-ndjson` bodies (exec and
//! build event streams from the daemon): however a body is cut into
//! chunks, it decodes to the same events or fails at the same line.
//! Budget and reproduction: see the `warren-fuzz` crate.

use serde_json::Value;
use warren_api_types::{BuildEvent, ExecEvent};
use warren_fuzz::{Target, corpus_dir};

use super::*;

/// The events of `body` fed in chunks of `chunk` bytes, or the line the
/// decoder refused.
fn decode<T: DeserializeOwned>(body: &[u8], chunk: usize) -> Result<Vec<T>, usize> {
    let mut decoder = Decoder::<T>::new();
    let mut out = Vec::new();
    let line_of = |e: NdjsonError| match e {
        NdjsonError::Invalid { line, .. } => line,
        NdjsonError::LineTooLong => usize::MAX,
    };
    for part in body.chunks(chunk.max(1)) {
        out.extend(decoder.feed(part).map_err(line_of)?);
    }
    out.extend(decoder.finish().map_err(line_of)?);
    Ok(out)
}

/// Events delivered before a failure may differ (a chunk that holds the
/// bad line yields none of its good ones), so failures compare by line.
fn same<T: DeserializeOwned + PartialEq + std::fmt::Debug>(body: &[u8], chunk: usize) {
    let whole = decode::<T>(body, body.len());
    let cut = decode::<T>(body, chunk);
    assert_eq!(whole, cut, "cut into chunks of {chunk}");
}

fn stream(input: &[u8]) {
    let Some((&chunk, body)) = input.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 32) + 1;
    same::<Value>(body, chunk);
    same::<ExecEvent>(body, chunk);
    same::<BuildEvent>(body, chunk);
}

#[test]
fn fuzz_ndjson_stream() {
    Target::new(
        "ndjson_stream",
        corpus_dir(env!("CARGO_MANIFEST_DIR"), "ndjson_stream"),
    )
    .tokens([
        "\n",
        "\r\n",
        "\n\n",
        "{",
        "}",
        "\"",
        ":",
        ",",
        "\"type\":",
        "\"stdout\"",
        "\"exit\"",
        "\"data\":",
        "\"code\":",
        "\u{e9}",
        "\u{2713}",
        "\u{ff}",
        "\\u00e9",
    ])
    .run(stream);
}
