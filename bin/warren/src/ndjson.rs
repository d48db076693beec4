//! Incremental decoding of `application/x-ndjson` response bodies.
//!
//! Chunks arrive split at arbitrary byte boundaries (mid-line, mid-UTF-8
//! sequence); the decoder buffers until a `\n` and yields one value per
//! non-blank line. A final line without a newline is accepted at the end of
//! the body. Lines longer than [`MAX_LINE`] are refused rather than buffered
//! without bound.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;

/// Longest line accepted, in bytes.
pub const MAX_LINE: usize = 64 * 1024 * 1024;

/// Why a stream could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum NdjsonError {
    #[error("a line of the response stream is longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("line {line} of the response stream is not a valid event ({reason})")]
    Invalid { line: usize, reason: String },
}

/// Splits bytes into lines and parses each as a `T`.
#[derive(Debug)]
pub struct Decoder<T> {
    buf: Vec<u8>,
    /// Bytes of `buf` already known to hold no newline.
    scanned: usize,
    lines_seen: usize,
    _marker: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Default for Decoder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: DeserializeOwned> Decoder<T> {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            scanned: 0,
            lines_seen: 0,
            _marker: PhantomData,
        }
    }

    /// Feeds one chunk and returns every value completed by it.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<T>, NdjsonError> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start.max(self.scanned)..]
            .iter()
            .position(|&b| b == b'\n')
        {
            let end = start.max(self.scanned) + pos;
            if let Some(v) = self.parse_line(start, end)? {
                out.push(v);
            }
            start = end + 1;
            self.scanned = start;
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        if self.buf.len() > MAX_LINE {
            return Err(NdjsonError::LineTooLong);
        }
        Ok(out)
    }

    /// Ends the stream: parses a last line that had no newline.
    pub fn finish(mut self) -> Result<Option<T>, NdjsonError> {
        let end = self.buf.len();
        self.parse_line(0, end)
    }

    fn parse_line(&mut self, start: usize, end: usize) -> Result<Option<T>, NdjsonError> {
        self.lines_seen += 1;
        let line = self.buf[start..end].trim_ascii();
        if line.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(line)
            .map(Some)
            .map_err(|e| NdjsonError::Invalid {
                line: self.lines_seen,
                reason: e.to_string(),
            })
    }
}

/// Error of an [`EventStream`]: the transport or the decoding failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the connection to the daemon broke while streaming")]
    Transport(#[source] reqwest::Error),
    #[error(transparent)]
    Decode(#[from] NdjsonError),
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Typed events read from a streaming response body.
pub struct EventStream<T> {
    body: ByteStream,
    decoder: Option<Decoder<T>>,
    pending: VecDeque<T>,
}

impl<T: DeserializeOwned> EventStream<T> {
    pub fn new(body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static) -> Self {
        Self {
            body: Box::pin(body),
            decoder: Some(Decoder::new()),
            pending: VecDeque::new(),
        }
    }

    /// The next event, or `None` once the body has ended.
    pub async fn next(&mut self) -> Result<Option<T>, StreamError> {
        loop {
            if let Some(v) = self.pending.pop_front() {
                return Ok(Some(v));
            }
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(None);
            };
            match self.body.next().await {
                Some(Ok(chunk)) => self.pending.extend(decoder.feed(&chunk)?),
                Some(Err(e)) => return Err(StreamError::Transport(e)),
                None => {
                    let last = self.decoder.take().map(Decoder::finish).transpose()?;
                    return Ok(last.flatten());
                }
            }
        }
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Ev {
        n: u32,
        s: String,
    }

    fn body() -> Vec<u8> {
        // Multi-byte UTF-8, a blank line, CRLF and no final newline.
        "{\"n\":1,\"s\":\"héllo\"}\n\n{\"n\":2,\"s\":\"wörld ✓\"}\r\n{\"n\":3,\"s\":\"\"}"
            .as_bytes()
            .to_vec()
    }

    fn expected() -> Vec<Ev> {
        vec![
            Ev {
                n: 1,
                s: "héllo".into(),
            },
            Ev {
                n: 2,
                s: "wörld ✓".into(),
            },
            Ev {
                n: 3,
                s: String::new(),
            },
        ]
    }

    fn decode_in_chunks(data: &[u8], cuts: &[usize]) -> Vec<Ev> {
        let mut d = Decoder::<Ev>::new();
        let mut out = Vec::new();
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&data.len())) {
            out.extend(d.feed(&data[prev..c]).unwrap());
            prev = c;
        }
        out.extend(d.finish().unwrap());
        out
    }

    #[test]
    fn every_single_split_point_decodes_the_same() {
        let data = body();
        for cut in 0..=data.len() {
            assert_eq!(decode_in_chunks(&data, &[cut]), expected(), "cut at {cut}");
        }
    }

    #[test]
    fn byte_by_byte_and_pairs_of_splits() {
        let data = body();
        let all: Vec<usize> = (1..data.len()).collect();
        assert_eq!(decode_in_chunks(&data, &all), expected());
        for a in 0..data.len() {
            for b in a..data.len() {
                assert_eq!(decode_in_chunks(&data, &[a, b]), expected());
            }
        }
    }

    #[test]
    fn garbage_names_the_line() {
        let mut d = Decoder::<Ev>::new();
        let err = d.feed(b"{\"n\":1,\"s\":\"a\"}\nnot json\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn endless_line_is_refused() {
        let mut d = Decoder::<Ev>::new();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut refused = false;
        for _ in 0..=MAX_LINE / chunk.len() {
            if d.feed(&chunk).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }

    #[tokio::test]
    async fn event_stream_reads_chunked_body() {
        let data = body();
        let chunks: Vec<reqwest::Result<Bytes>> = data
            .chunks(3)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut s = EventStream::<Ev>::new(futures::stream::iter(chunks));
        let mut got = Vec::new();
        while let Some(ev) = s.next().await.unwrap() {
            got.push(ev);
        }
        assert_eq!(got, expected());
        assert!(s.next().await.unwrap().is_none());
    }
}
