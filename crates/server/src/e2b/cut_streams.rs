//! Connect streams cut by the sandbox's end say why.
//!
//! A command's output stream (`process.Process/Start`, `Connect`, a
//! directory watch) passes through the proxy from the agent. When the
//! sandbox is killed, expires or pauses, the agent's connection drops in
//! the middle of that stream. Forwarded as it is, the client sees an
//! HTTP/1.1 body cut short, which the SDKs cannot tell from a network
//! failure. The proxy knows better: when the upstream body fails, it reads
//! the sandbox's row and, if the sandbox is gone, ends the stream with a
//! Connect end-of-stream frame naming the cause:
//! - killed, expired or failed: `unavailable`, "the sandbox was killed or
//!   reached its end of life" (the SDKs' words for it);
//! - pausing or paused: `canceled`, "the sandbox was paused".
//!
//! A sandbox still running means a real transport failure: the error is
//! passed on and the client's connection is cut as before. So is a cut in
//! the middle of a frame, where no frame may follow. The output itself is
//! never looked at: only frame headers are counted, to know where frames
//! end.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures::StreamExt;
use warren_core::{SandboxId, SandboxState};
use warren_envd::code::{Code, ConnectError};
use warren_envd::envelope::end_frame;

use crate::service::Sandboxes;

const HEADER_LEN: usize = 5;

/// Where a byte stream of Connect frames stands: inside a header, inside a
/// payload, or between frames.
#[derive(Debug, Default)]
struct FrameEdges {
    header: [u8; HEADER_LEN],
    header_have: usize,
    payload_left: usize,
}

impl FrameEdges {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(data.len());
                self.payload_left -= n;
                data = &data[n..];
                continue;
            }
            let n = (HEADER_LEN - self.header_have).min(data.len());
            self.header[self.header_have..self.header_have + n].copy_from_slice(&data[..n]);
            self.header_have += n;
            data = &data[n..];
            if self.header_have == HEADER_LEN {
                let h = self.header;
                self.payload_left = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
                self.header_have = 0;
            }
        }
    }

    fn between_frames(&self) -> bool {
        self.header_have == 0 && self.payload_left == 0
    }
}

/// A stream being forwarded.
struct Cut {
    upstream: axum::body::BodyDataStream,
    edges: FrameEdges,
    ended: bool,
}

/// Whether the response is a Connect stream (its frames are enveloped).
fn is_connect_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/connect+"))
}

/// The end-of-stream error for a sandbox in `state`, if it is gone.
fn why_cut(state: Option<SandboxState>) -> Option<ConnectError> {
    match state {
        None | Some(SandboxState::Killed | SandboxState::Failed) => Some(ConnectError::new(
            Code::Unavailable,
            "the sandbox was killed or reached its end of life",
        )),
        Some(SandboxState::Pausing | SandboxState::Paused) => Some(ConnectError::new(
            Code::Canceled,
            "the sandbox was paused; connecting to it resumes it",
        )),
        Some(SandboxState::Creating | SandboxState::Running | SandboxState::Resuming) => None,
    }
}

/// `resp` with a cut of its Connect stream explained (see the module doc).
pub fn explain(resp: Response, sandboxes: Arc<Sandboxes>, id: SandboxId) -> Response {
    if !is_connect_stream(resp.headers()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let cut = Cut {
        upstream: body.into_data_stream(),
        edges: FrameEdges::default(),
        ended: false,
    };
    let stream = futures::stream::unfold(cut, move |mut cut| {
        let (sandboxes, id) = (sandboxes.clone(), id.clone());
        async move {
            if cut.ended {
                return None;
            }
            match cut.upstream.next().await? {
                Ok(bytes) => {
                    cut.edges.feed(&bytes);
                    Some((Ok(bytes), cut))
                }
                Err(e) => {
                    cut.ended = true;
                    let state = match sandboxes.lookup(&id).await {
                        Ok(rec) => rec.map(|r| r.state),
                        Err(_) => Some(SandboxState::Running),
                    };
                    let item = match why_cut(state).filter(|_| cut.edges.between_frames()) {
                        Some(error) => Ok(end_frame(Some(error))),
                        None => Err(e),
                    };
                    Some((item, cut))
                }
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_envd::envelope::encode_frame;

    #[test]
    fn frame_edges_follow_frames_split_anywhere() {
        let mut bytes = encode_frame(0, b"{\"a\":1}").unwrap().to_vec();
        bytes.extend_from_slice(&encode_frame(0, b"").unwrap());
        bytes.extend_from_slice(&encode_frame(0, &[7u8; 300]).unwrap());
        for split in 0..bytes.len() {
            let mut edges = FrameEdges::default();
            edges.feed(&bytes[..split]);
            let on_edge = [0, 12, 17].contains(&split);
            assert_eq!(edges.between_frames(), on_edge, "split at {split}");
            edges.feed(&bytes[split..]);
            assert!(edges.between_frames());
        }
    }

    #[test]
    fn only_a_sandbox_that_is_gone_explains_a_cut() {
        let code = |s| why_cut(s).map(|e| e.code);
        assert_eq!(code(Some(SandboxState::Killed)), Some(Code::Unavailable));
        assert_eq!(code(None), Some(Code::Unavailable));
        assert_eq!(code(Some(SandboxState::Paused)), Some(Code::Canceled));
        assert_eq!(code(Some(SandboxState::Running)), None);
        let killed = why_cut(Some(SandboxState::Failed)).unwrap();
        assert!(killed.message.contains("killed or reached its end of life"));
    }
}
