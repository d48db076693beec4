//! The Connect streaming envelope: each message is one frame of
//! `flags: u8`, `length: u32` (big-endian) and `length` bytes of JSON.
//!
//! Flag `0x02` marks the end-of-stream frame, whose JSON is `{}` on success
//! or `{"error": {"code", "message"}}`; flag `0x01` (compressed) is refused
//! because no compression is ever negotiated. A decoder never buffers more
//! than one frame of at most `max_frame` bytes and reports every malformed
//! input as an [`EnvelopeError`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::code::{Code, ConnectError};

pub const FLAG_COMPRESSED: u8 = 0x01;
pub const FLAG_END_STREAM: u8 = 0x02;
const HEADER_LEN: usize = 5;

/// The default largest frame a decoder accepts: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The peer announced a frame larger than we accept.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// The peer compressed a frame although no compression was negotiated.
    #[error("compressed frames are not supported; send frames uncompressed")]
    Compressed,
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({0} bytes left over)")]
    Truncated(usize),
    /// A frame's JSON does not match the expected message.
    #[error("invalid message JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The underlying body failed.
    #[error("reading the stream failed: {0}")]
    Body(String),
}

impl EnvelopeError {
    /// The Connect error a server answers with for this failure.
    pub fn to_connect(&self) -> ConnectError {
        let code = match self {
            Self::TooLarge { .. } => Code::ResourceExhausted,
            Self::Compressed => Code::Unimplemented,
            Self::Truncated(_) | Self::Json(_) => Code::InvalidArgument,
            Self::Body(_) => Code::Canceled,
        };
        ConnectError::new(code, self.to_string())
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub flags: u8,
    pub payload: Bytes,
}

/// The JSON of an end-of-stream frame.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EndStream {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ConnectError>,
}

impl Frame {
    pub fn is_end_stream(&self) -> bool {
        self.flags & FLAG_END_STREAM != 0
    }

    /// Parses a message frame's JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        Ok(serde_json::from_slice(&self.payload)?)
    }

    /// Parses an end-of-stream frame; an empty payload counts as `{}`.
    pub fn end_stream(&self) -> Result<EndStream, EnvelopeError> {
        if self.payload.is_empty() {
            return Ok(EndStream::default());
        }
        self.json()
    }
}

/// Encodes one frame.
pub fn encode_frame(flags: u8, payload: &[u8]) -> Result<Bytes, EnvelopeError> {
    let len = u32::try_from(payload.len()).map_err(|_| EnvelopeError::TooLarge {
        len: payload.len(),
        max: u32::MAX as usize,
    })?;
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    buf.put_u8(flags);
    buf.put_u32(len);
    buf.put_slice(payload);
    Ok(buf.freeze())
}

/// Encodes a message frame.
pub fn message_frame<T: Serialize>(message: &T) -> Result<Bytes, EnvelopeError> {
    encode_frame(0, &serde_json::to_vec(message)?)
}

/// Encodes the end-of-stream frame, with the error that ended the stream.
pub fn end_frame(error: Option<ConnectError>) -> Bytes {
    let json = serde_json::to_vec(&EndStream { error }).unwrap_or_else(|_| b"{}".to_vec());
    encode_frame(FLAG_END_STREAM, &json).unwrap_or_default()
}

/// Incremental frame decoder.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_frame,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, EnvelopeError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let flags = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > self.max_frame {
            return Err(EnvelopeError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        if flags & FLAG_COMPRESSED != 0 {
            return Err(EnvelopeError::Compressed);
        }
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(Frame { flags, payload }))
    }

    /// Checks that the input ended on a frame boundary.
    pub fn finish(&self) -> Result<(), EnvelopeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(EnvelopeError::Truncated(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_arbitrary_splits() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&message_frame(&serde_json::json!({"a": 1})).unwrap());
        wire.extend_from_slice(&end_frame(Some(ConnectError::not_found("gone"))));
        for split in 0..wire.len() {
            let mut dec = FrameDecoder::default();
            let mut frames = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                dec.push(part);
                while let Some(f) = dec.next_frame().unwrap() {
                    frames.push(f);
                }
            }
            dec.finish().unwrap();
            assert_eq!(frames.len(), 2);
            assert_eq!(
                frames[0].json::<serde_json::Value>().unwrap(),
                serde_json::json!({"a": 1})
            );
            let end = frames[1].end_stream().unwrap();
            assert!(frames[1].is_end_stream());
            assert_eq!(end.error.unwrap().code, Code::NotFound);
        }
    }

    #[test]
    fn end_frame_wire_bytes() {
        assert_eq!(&end_frame(None)[..], b"\x02\x00\x00\x00\x02{}");
    }

    #[test]
    fn oversized_compressed_and_truncated_are_errors() {
        let mut dec = FrameDecoder::new(10);
        dec.push(&[0, 0, 0, 0, 11]);
        assert!(matches!(
            dec.next_frame(),
            Err(EnvelopeError::TooLarge { len: 11, max: 10 })
        ));
        let mut dec = FrameDecoder::new(10);
        dec.push(&[FLAG_COMPRESSED, 0, 0, 0, 1, b'x']);
        assert!(matches!(dec.next_frame(), Err(EnvelopeError::Compressed)));
        let mut dec = FrameDecoder::new(10);
        dec.push(&[0, 0, 0, 0, 4, b'{']);
        assert!(dec.next_frame().unwrap().is_none());
        assert!(matches!(dec.finish(), Err(EnvelopeError::Truncated(6))));
        let mut dec = FrameDecoder::new(u32::MAX as usize);
        dec.push(&[0, 0xff, 0xff, 0xff, 0xff]);
        // A huge announced length must not allocate up front beyond what arrives.
        assert!(dec.next_frame().unwrap().is_none());
    }
}
