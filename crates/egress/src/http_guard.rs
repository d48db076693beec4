//! Plain HTTP through the egress proxy, one request at a time.
//!
//! The proxy judges a plain-HTTP connection by its first request's host.
//! A kept-alive connection carries more requests, and each could name
//! another host served at the same address, so every request head is read
//! and must name the same host by the same rules ([`crate::sniff`]);
//! otherwise the connection ends before that request reaches the server,
//! and the host it named is reported.
//!
//! Protocol, client to server:
//! - a head is read whole (at most [`SNIFF_LIMIT`] bytes) and judged, then
//!   sent on; its body follows by its framing: `Content-Length` bytes, or
//!   `Transfer-Encoding: chunked` chunks up to the last chunk and its
//!   trailers, or none. A head with both, with lengths that disagree or are
//!   not numbers, or with a transfer coding other than chunked last, ends
//!   the connection: they are how requests are smuggled past one parser
//!   and into another.
//! - after a request that asks for an upgrade (`Upgrade:`, WebSocket) or a
//!   `CONNECT`, nothing more is read from the client until the server's
//!   next answer arrives: if it is `101 Switching Protocols` (or a 2xx to
//!   a CONNECT), the rest of the connection is passed on unread (it is no
//!   longer HTTP/1.1, and its host was judged by that request); otherwise
//!   requests go on being judged. (With requests pipelined before the
//!   upgrade, the answer looked at may belong to an earlier one; a wrong
//!   guess only keeps judging, or lets the tunnel reach the same server.)
//!
//! Server to client, bytes are spliced unread ([`crate::splice`]), but
//! for the first bytes of the answer to an upgrade or CONNECT, which are
//! peeked at. At the first refused
//! request nothing more is read from the client and the server's side is
//! shut for writing: the server answers the requests it was sent, then
//! closes. The connection ends when both directions are done, or after
//! [`IDLE_TIMEOUT`] without a byte either way.

use std::io;
use std::sync::{Arc, Mutex};

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::proxy::IDLE_TIMEOUT;
use crate::sniff::{SNIFF_LIMIT, Sniff, sniff};
use crate::splice::{Activity, Stepper, shutdown_write, splice_one_way};

/// Longest chunk-size or trailer line.
const LINE_LIMIT: usize = 4096;
const READ_SIZE: usize = 16 * 1024;

/// What a guarded relay carried, and the request that ended it, if any.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Guarded {
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// The host a refused request named (`"(malformed)"` for a head or
    /// body that could not be read, `""` for one naming no host).
    pub refused: Option<String>,
}

/// How a request's body is delimited.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// The connection stops being HTTP if the server answers this request
    /// by switching: 101 for an upgrade, a 2xx for a CONNECT.
    Tunnel {
        connect: bool,
    },
}

/// The status of the server's next answer, asked by the request side after
/// an upgrade or CONNECT request (`None`: not a status line).
type SwitchQuestion = Arc<Mutex<Option<oneshot::Sender<Option<u16>>>>>;

/// Relays `client` to `server`, every request of it naming `host`.
/// Answers go back with `splice(2)`, as other connections' bytes do.
pub async fn relay_http(client: TcpStream, server: TcpStream, host: &str) -> io::Result<Guarded> {
    let activity = Activity::new(IDLE_TIMEOUT);
    let question = SwitchQuestion::default();
    let mut requests = Requests {
        from: &client,
        to: &server,
        buf: Vec::new(),
        sent: 0,
        activity: &activity,
        question: question.clone(),
    };
    let (up, down) = tokio::join!(
        requests.run(host),
        answers(&server, &client, &activity, &question)
    );
    let refused = match up {
        Ok(refused) => refused,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Some("(malformed)".to_owned()),
        Err(_) => None,
    };
    Ok(Guarded {
        bytes_out: requests.sent,
        bytes_in: down,
        refused,
    })
}

/// Splices the server's answers back to the client; returns the bytes.
///
/// A [`SwitchQuestion`] is answered from the first bytes read after it was
/// asked: the question is looked at and those bytes are taken under one
/// lock, and the request side asks before it sends the request, so what is
/// taken after an unasked look was sent before the request, never its
/// answer.
async fn answers(
    from: &TcpStream,
    to: &TcpStream,
    activity: &Activity,
    question: &SwitchQuestion,
) -> u64 {
    let Ok(stepper) = Stepper::new() else {
        shutdown_write(to);
        return 0;
    };
    let mut total = 0;
    loop {
        let left = activity.left();
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, from.readable()).await {
            Err(_) => continue,
            Ok(Err(_)) => break,
            Ok(Ok(())) => {}
        }
        let queued = {
            let mut asked = question.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(asked) = asked.take() {
                let mut first = [0u8; 12];
                let n = peek_now(from, &mut first);
                let _ = asked.send(status(&first[..n]));
            }
            stepper.take(from)
        };
        match queued {
            Ok(0) => break,
            Ok(n) => {
                activity.touch();
                if stepper.give(to, n, activity).await.is_err() {
                    break;
                }
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    // A question still open is answered "no": nothing more will come.
    question.lock().unwrap_or_else(|e| e.into_inner()).take();
    shutdown_write(to);
    total
}

/// What `from` has now, copied without taking it.
fn peek_now(from: &TcpStream, buf: &mut [u8]) -> usize {
    use std::os::fd::AsRawFd;
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
    let n = unsafe {
        libc::recv(
            from.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).unwrap_or(0)
}

/// The status code of an answer starting with `first`.
fn status(first: &[u8]) -> Option<u16> {
    let rest = first
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| first.strip_prefix(b"HTTP/1.0 "))?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

/// The client's side: requests read, judged and sent on.
struct Requests<'a> {
    from: &'a TcpStream,
    to: &'a TcpStream,
    /// Read from the client, not yet sent.
    buf: Vec<u8>,
    /// Bytes sent to the server.
    sent: u64,
    activity: &'a Activity,
    question: SwitchQuestion,
}

impl Requests<'_> {
    /// Passes requests on until the client is done (`None`) or one names
    /// another host (`Some(host)`); a malformed head or body is an
    /// `InvalidData` error. Either way the server's side is shut for
    /// writing, so it answers what it was sent and closes.
    async fn run(&mut self, host: &str) -> io::Result<Option<String>> {
        let result = self.requests(host).await;
        shutdown_write(self.to);
        // A question nobody will answer must not hold the answers back.
        self.question
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        result
    }

    async fn requests(&mut self, host: &str) -> io::Result<Option<String>> {
        loop {
            let Some(end) = self.head_end().await? else {
                // The client is done between requests.
                return Ok(None);
            };
            let framing = match sniff(&self.buf[..end]) {
                Sniff::Http(Some(named)) if named == host => framing(&self.buf[..end])?,
                Sniff::Http(named) => return Ok(Some(named.unwrap_or_default())),
                _ => return Err(malformed("a request head that is not HTTP/1.x")),
            };
            let answer = matches!(framing, Framing::Tunnel { .. }).then(|| {
                let (tx, rx) = oneshot::channel();
                *self.question.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
                rx
            });
            self.send(end).await?;
            match framing {
                Framing::None => {}
                Framing::Length(n) => self.pass(n).await?,
                Framing::Chunked => self.pass_chunks().await?,
                Framing::Tunnel { connect } => {
                    // No body follows an upgrade request the proxy passes
                    // on: the client waits for the answer.
                    let code = match answer {
                        Some(rx) => rx.await.ok().flatten(),
                        None => None,
                    };
                    let switched = match code {
                        Some(101) => !connect,
                        Some(200..=299) => connect,
                        _ => false,
                    };
                    if switched {
                        self.tunnel().await?;
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Reads until the buffer holds a whole head; its length, or `None` if
    /// the client closed before sending a byte of it.
    async fn head_end(&mut self) -> io::Result<Option<usize>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                return Ok(Some(i + 4));
            }
            if self.buf.len() >= SNIFF_LIMIT {
                return Err(malformed("a request head longer than the proxy reads"));
            }
            if !self.fill().await? {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err(malformed("a request cut off in its head")),
                };
            }
        }
    }

    /// Reads more from the client; `false` at its end (or once the
    /// connection was idle too long).
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; READ_SIZE];
        loop {
            let left = self.activity.left();
            if left.is_zero() {
                return Ok(false);
            }
            let Ok(ready) = tokio::time::timeout(left, self.from.readable()).await else {
                continue;
            };
            ready?;
            match self.from.try_read(&mut chunk) {
                Ok(n) => {
                    self.activity.touch();
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends the first `n` buffered bytes.
    async fn send(&mut self, n: usize) -> io::Result<()> {
        let mut at = 0;
        while at < n {
            self.to.writable().await?;
            match self
                .to
                .try_io(Interest::WRITABLE, || self.to.try_write(&self.buf[at..n]))
            {
                Ok(w) => {
                    at += w;
                    self.activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        self.buf.drain(..n);
        self.sent += n as u64;
        Ok(())
    }

    /// Sends the next `n` bytes of the client's stream.
    async fn pass(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            if self.buf.is_empty() && !self.fill().await? {
                return Err(malformed("a body cut off before its length"));
            }
            let take = self.buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            self.send(take).await?;
            n -= take as u64;
        }
        Ok(())
    }

    /// The next line (without its CRLF, which stays buffered with it).
    async fn next_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                return Ok(String::from_utf8_lossy(&self.buf[..i]).into_owned());
            }
            if self.buf.len() > LINE_LIMIT {
                return Err(malformed("a chunk line longer than the proxy reads"));
            }
            if !self.fill().await? {
                return Err(malformed("a chunked body cut off"));
            }
        }
    }

    /// Sends a chunked body: chunks, the last chunk, its trailers. Each
    /// line is checked before it is sent.
    async fn pass_chunks(&mut self) -> io::Result<()> {
        loop {
            let line = self.next_line().await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| malformed("a chunk size that is not a hex number"))?;
            self.send(line.len() + 2).await?;
            if size == 0 {
                loop {
                    let trailer = self.next_line().await?;
                    self.send(trailer.len() + 2).await?;
                    if trailer.is_empty() {
                        return Ok(());
                    }
                }
            }
            self.pass(size).await?;
            if !self.next_line().await?.is_empty() {
                return Err(malformed("chunk data longer than its size"));
            }
            self.send(2).await?;
        }
    }

    /// Sends everything else unread.
    async fn tunnel(&mut self) -> io::Result<()> {
        let pending = self.buf.len();
        self.send(pending).await?;
        let moved = splice_one_way(self.from, self.to, self.activity).await?;
        self.sent += moved;
        Ok(())
    }
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How the body of the request whose head is `head` is delimited.
fn framing(head: &[u8]) -> io::Result<Framing> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let method = lines
        .next()
        .and_then(|l| l.split(' ').next())
        .unwrap_or_default();
    let (mut length, mut chunked, mut coded, mut upgrade) = (None, false, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| malformed("a Content-Length that is not a number"))?;
            if length.is_some_and(|l| l != n) {
                return Err(malformed("two Content-Lengths that disagree"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            coded = true;
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    match (coded, chunked, length) {
        (true, _, Some(_)) => Err(malformed("both Transfer-Encoding and Content-Length")),
        (true, false, _) => Err(malformed("a transfer coding other than chunked last")),
        _ if method == "CONNECT" => Ok(Framing::Tunnel { connect: true }),
        _ if upgrade => Ok(Framing::Tunnel { connect: false }),
        (true, true, None) => Ok(Framing::Chunked),
        (false, _, Some(n)) => Ok(Framing::Length(n)),
        (false, _, None) => Ok(Framing::None),
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server that keeps what it received and answers `answer` once it
    /// has read `answer_after` bytes (none: never).
    async fn server(answer: &'static [u8]) -> (std::net::SocketAddr, oneshot::Receiver<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let mut answered = false;
            loop {
                match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                }
                if !answered && !answer.is_empty() {
                    answered = true;
                    let _ = s.write_all(answer).await;
                }
            }
            let _ = tx.send(got);
        });
        (addr, rx)
    }

    /// Relays `sent` (then the client's end) to a server answering
    /// `answer`: what the relay reports and what the server received.
    async fn run(sent: &[u8], answer: &'static [u8]) -> (Guarded, Vec<u8>) {
        let (server_addr, received) = server(answer).await;
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_addr = front.local_addr().unwrap();
        let sent = sent.to_vec();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(front_addr).await.unwrap();
            c.write_all(&sent).await.unwrap();
            let mut back = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_millis(500), c.read_to_end(&mut back)).await;
            back
        });
        let (accepted, _) = front.accept().await.unwrap();
        let upstream = TcpStream::connect(server_addr).await.unwrap();
        let guarded = relay_http(accepted, upstream, "a.example").await.unwrap();
        let _ = client.await;
        (guarded, received.await.unwrap())
    }

    const FIRST: &[u8] = b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n";

    #[tokio::test]
    async fn requests_for_the_judged_host_all_go_through() {
        let body = b"POST /x HTTP/1.1\r\nHost: a.example:80\r\nContent-Length: 5\r\n\r\nhello";
        let chunked = b"POST /c HTTP/1.1\r\nHost: A.example\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nTrailer: t\r\n\r\n";
        let sent = [FIRST, body.as_slice(), chunked.as_slice(), FIRST].concat();
        let (guarded, received) = run(&sent, b"").await;
        assert_eq!(guarded.refused, None);
        assert_eq!(received, sent);
        assert_eq!(guarded.bytes_out, sent.len() as u64);
    }

    #[tokio::test]
    async fn a_later_request_for_another_host_never_reaches_the_server() {
        for (second, named) in [
            (
                &b"GET /admin HTTP/1.1\r\nHost: b.example\r\n\r\n"[..],
                "b.example",
            ),
            (
                b"GET http://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
                "(malformed)",
            ),
            (b"GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n", ""),
            (b"GET / HTTP/1.1\r\n\r\n", ""),
        ] {
            let sent = [FIRST, second].concat();
            let (guarded, received) = run(&sent, b"").await;
            assert_eq!(guarded.refused.as_deref(), Some(named), "{second:?}");
            assert_eq!(received, FIRST, "{second:?}");
        }
    }

    #[tokio::test]
    async fn a_body_is_passed_by_its_framing_and_smuggling_ends_the_connection() {
        // A request hidden in a body is body, not a request.
        let inner = b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n";
        let head = format!(
            "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: {}\r\n\r\n",
            inner.len()
        );
        let sent = [head.as_bytes(), inner].concat();
        let (guarded, received) = run(&sent, b"").await;
        assert_eq!((guarded.refused, received), (None, sent));

        let te = b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n";
        let cases: [(Vec<u8>, Vec<u8>); 5] = [
            (
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
                vec![],
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
                vec![],
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked, identity\r\n\r\n".to_vec(),
                vec![],
            ),
            // The head is sound and goes; the bad chunk line does not.
            ([&te[..], b"zz\r\n"].concat(), te.to_vec()),
            ([&te[..], b"3\r\nabcdef\r\n"].concat(), [&te[..], b"3\r\nabc"].concat()),
        ];
        for (smuggle, reaches) in cases {
            let sent = [FIRST, &smuggle].concat();
            let (guarded, received) = run(&sent, b"").await;
            assert_eq!(
                guarded.refused.as_deref(),
                Some("(malformed)"),
                "{smuggle:?}"
            );
            assert_eq!(received, [FIRST, &reaches].concat(), "{smuggle:?}");
        }
    }

    #[tokio::test]
    async fn only_a_switched_upgrade_stops_the_judging() {
        let upgrade = b"GET /ws HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        let later = b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n";
        // The server switched: what follows is another protocol, unread.
        let sent = [upgrade.as_slice(), later].concat();
        let (guarded, received) = run(&sent, b"HTTP/1.1 101 Switching Protocols\r\n\r\n").await;
        assert_eq!((guarded.refused, received), (None, sent.clone()));
        // It did not: the next request is judged like any other.
        let (guarded, received) = run(&sent, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(guarded.refused.as_deref(), Some("b.example"));
        assert_eq!(received, upgrade);
    }
}
