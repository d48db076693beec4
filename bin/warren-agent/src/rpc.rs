//! Connect RPC server glue: decoding requests and encoding answers.
//!
//! Unary calls take and answer `application/json`; errors are Connect JSON
//! with the code's HTTP status. Streaming calls take and answer
//! `application/connect+json` envelopes; a streaming answer is always HTTP
//! 200 and ends with an end-of-stream frame carrying the error, if any.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use warren_envd::envelope::{self, FrameDecoder};
use warren_envd::http_api::{CONNECT_TIMEOUT_HEADER, KEEPALIVE_HEADER};
use warren_envd::{CONTENT_TYPE_CONNECT_JSON, CONTENT_TYPE_JSON, Code, ConnectError};

/// Largest unary request body and largest stream frame accepted.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Result of an RPC handler.
pub type RpcResult<T> = Result<T, ConnectError>;

fn media_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or("")
}

/// Checks the request's content type for a unary (`streaming == false`) or
/// streaming call.
pub fn check_content_type(headers: &HeaderMap, streaming: bool) -> RpcResult<()> {
    let expected = if streaming {
        CONTENT_TYPE_CONNECT_JSON
    } else {
        CONTENT_TYPE_JSON
    };
    let got = media_type(headers);
    if got.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    Err(ConnectError::new(
        Code::Unimplemented,
        format!(
            "content type {got:?} is not supported here; send {expected} (only the JSON codec is served)"
        ),
    ))
}

async fn read_body(body: Body) -> RpcResult<Bytes> {
    axum::body::to_bytes(body, MAX_MESSAGE).await.map_err(|e| {
        ConnectError::new(
            Code::ResourceExhausted,
            format!("request body unreadable or over {MAX_MESSAGE} bytes: {e}"),
        )
    })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> RpcResult<T> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ConnectError::invalid_argument(format!("malformed request JSON: {e}")))
}

/// Decodes a unary request body.
pub async fn unary_request<T: DeserializeOwned>(body: Body) -> RpcResult<T> {
    parse_json(&read_body(body).await?)
}

/// Decodes the single enveloped message of a server-streaming request.
pub async fn stream_request<T: DeserializeOwned>(body: Body) -> RpcResult<T> {
    let bytes = read_body(body).await?;
    let mut decoder = FrameDecoder::new(MAX_MESSAGE);
    decoder.push(&bytes);
    let frame = decoder
        .next_frame()
        .map_err(|e| e.to_connect())?
        .ok_or_else(|| {
            ConnectError::invalid_argument("request stream holds no complete message")
        })?;
    if frame.is_end_stream() {
        return Err(ConnectError::invalid_argument(
            "request stream holds no message",
        ));
    }
    parse_json(&frame.payload)
}

/// The messages of a client-streaming request, in order.
pub fn client_stream<T: DeserializeOwned + Send + 'static>(
    body: Body,
) -> impl Stream<Item = RpcResult<T>> + Send {
    let state = (
        body.into_data_stream(),
        FrameDecoder::new(MAX_MESSAGE),
        false,
    );
    futures::stream::unfold(state, |(mut data, mut decoder, done)| async move {
        if done {
            return None;
        }
        loop {
            match decoder.next_frame() {
                Err(e) => return Some((Err(e.to_connect()), (data, decoder, true))),
                Ok(Some(frame)) if frame.is_end_stream() => return None,
                Ok(Some(frame)) => {
                    return Some((parse_json(&frame.payload), (data, decoder, false)));
                }
                Ok(None) => {}
            }
            match data.next().await {
                Some(Ok(chunk)) => decoder.push(&chunk),
                Some(Err(e)) => {
                    let err = ConnectError::new(
                        Code::Canceled,
                        format!("reading the request stream failed: {e}"),
                    );
                    return Some((Err(err), (data, decoder, true)));
                }
                None => {
                    return match decoder.finish() {
                        Ok(()) => None,
                        Err(e) => Some((Err(e.to_connect()), (data, decoder, true))),
                    };
                }
            }
        }
    })
}

/// A Connect error as a unary answer.
pub fn error_response(err: &ConnectError) -> Response {
    let status =
        StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(err).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE_JSON)], body).into_response()
}

/// A unary answer.
pub fn unary_response<T: Serialize>(result: RpcResult<T>) -> Response {
    match result
        .and_then(|v| serde_json::to_vec(&v).map_err(|e| ConnectError::internal(e.to_string())))
    {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE_JSON)], body).into_response(),
        Err(e) => error_response(&e),
    }
}

/// The keepalive interval the client asked for with `Keepalive-Ping-Interval`.
pub fn keepalive_interval(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(KEEPALIVE_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (secs > 0).then(|| Duration::from_secs(secs.min(3600)))
}

/// The request's Connect deadline (`connect-timeout-ms`): `None` when absent
/// or 0 (no deadline, as in envd); anything but a whole number of
/// milliseconds is refused.
pub fn connect_timeout(headers: &HeaderMap) -> Result<Option<Duration>, ConnectError> {
    let Some(value) = headers.get(CONNECT_TIMEOUT_HEADER) else {
        return Ok(None);
    };
    let ms: u64 = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ConnectError::invalid_argument(format!(
                "{CONNECT_TIMEOUT_HEADER} must be a whole number of milliseconds (at most 10 digits)"
            ))
        })?;
    Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

/// A streaming answer: every item becomes a frame, an error ends the stream,
/// and `keepalive` (interval and message) is sent while the stream is idle.
pub fn stream_response<T, S>(messages: S, keepalive: Option<(Duration, T)>) -> Response
where
    T: Serialize + Clone + Send + 'static,
    S: Stream<Item = RpcResult<T>> + Send + 'static,
{
    struct St<S, T> {
        messages: std::pin::Pin<Box<S>>,
        tick: Option<(tokio::time::Interval, T)>,
        done: bool,
    }
    let tick = keepalive.map(|(every, msg)| {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        (interval, msg)
    });
    let state = St {
        messages: Box::pin(messages),
        tick,
        done: false,
    };
    let frames = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let next = match st.tick.as_mut() {
            Some((interval, msg)) => tokio::select! {
                item = st.messages.next() => item,
                _ = interval.tick() => Some(Ok(msg.clone())),
            },
            None => st.messages.next().await,
        };
        let frame = match next {
            Some(Ok(msg)) => match envelope::message_frame(&msg) {
                Ok(frame) => frame,
                Err(e) => {
                    st.done = true;
                    envelope::end_frame(Some(ConnectError::internal(e.to_string())))
                }
            },
            Some(Err(e)) => {
                st.done = true;
                envelope::end_frame(Some(e))
            }
            None => {
                st.done = true;
                envelope::end_frame(None)
            }
        };
        Some((Ok::<_, std::convert::Infallible>(frame), st))
    });
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE_CONNECT_JSON)],
        Body::from_stream(frames),
    )
        .into_response()
}

/// A streaming answer that is only an error.
pub fn stream_error(err: ConnectError) -> Response {
    let frame = envelope::end_frame(Some(err));
    ([(header::CONTENT_TYPE, CONTENT_TYPE_CONNECT_JSON)], frame).into_response()
}

/// A client-streaming answer: one message, then the end-of-stream frame.
pub fn client_stream_response<T: Serialize>(result: RpcResult<T>) -> Response {
    let mut body = Vec::new();
    match result.and_then(|v| {
        envelope::message_frame(&v).map_err(|e| ConnectError::internal(e.to_string()))
    }) {
        Ok(frame) => {
            body.extend_from_slice(&frame);
            body.extend_from_slice(&envelope::end_frame(None));
        }
        Err(e) => body.extend_from_slice(&envelope::end_frame(Some(e))),
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE_CONNECT_JSON)], body).into_response()
}
