//! Zero-copy relaying between two TCP sockets with `splice(2)`.
//!
//! Each direction owns a pipe: bytes move socket → pipe → socket inside
//! the kernel and never enter the daemon's memory. Protocol per direction:
//! wait until `from` is readable, splice up to the pipe's capacity into
//! the pipe (0 = end of stream), then splice all of it out to `to` before
//! reading again — so the pipe is always empty when a read starts, and an
//! `EAGAIN` on the read means `from` has nothing, never a full pipe. At
//! the end `to` is shut down for writing, passing the half-close on. A
//! connection ends when neither direction moved a byte for the idle time
//! (a silent direction alone keeps waiting while the other one streams).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// The pipe size asked for; the kernel may grant less.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// Copies both ways between `a` and `b` until both directions ended;
/// returns the bytes moved a→b and b→a. Both end after `idle` without a
/// byte either way.
pub async fn splice_both(a: &TcpStream, b: &TcpStream, idle: Duration) -> io::Result<(u64, u64)> {
    let (ab, ba) = (Pipe::new()?, Pipe::new()?);
    let activity = Activity::new(idle);
    let (out, inn) = tokio::join!(one_way(a, b, &ab, &activity), one_way(b, a, &ba, &activity));
    Ok((out, inn))
}

/// Copies `from` to `to` alone (the other direction is the caller's),
/// until `from` ends or the connection was idle by `activity`; then `to`
/// is shut down for writing. Returns the bytes moved.
pub(crate) async fn splice_one_way(
    from: &TcpStream,
    to: &TcpStream,
    activity: &Activity,
) -> io::Result<u64> {
    let pipe = Pipe::new()?;
    Ok(one_way(from, to, &pipe, activity).await)
}

/// One direction driven by its caller, a pipe-full at a time: [`Self::take`]
/// moves what the source has into the pipe without waiting, so the caller
/// can look at the stream (peek) and decide in the same breath;
/// [`Self::give`] empties the pipe into the destination.
pub(crate) struct Stepper {
    pipe: Pipe,
}

impl Stepper {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self { pipe: Pipe::new()? })
    }

    /// Splices what `from` has now into the empty pipe: the bytes queued,
    /// 0 at the end of the stream, `WouldBlock` when it has nothing.
    pub(crate) fn take(&self, from: &TcpStream) -> io::Result<usize> {
        from.try_io(Interest::READABLE, || {
            splice(
                from.as_raw_fd(),
                self.pipe.write.as_raw_fd(),
                self.pipe.capacity,
            )
        })
    }

    /// Splices the `queued` bytes out of the pipe into `to`.
    pub(crate) async fn give(
        &self,
        to: &TcpStream,
        mut queued: usize,
        activity: &Activity,
    ) -> io::Result<()> {
        while queued > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(self.pipe.read.as_raw_fd(), to.as_raw_fd(), queued)
            }) {
                Ok(n) => {
                    queued -= n;
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// When either direction last moved a byte.
pub(crate) struct Activity {
    start: Instant,
    idle: Duration,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new(idle: Duration) -> Self {
        Self {
            start: Instant::now(),
            idle,
            last_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// How long a direction may still wait for a byte; zero once the
    /// whole connection was idle for the idle time.
    pub(crate) fn left(&self) -> Duration {
        let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        (last + self.idle).saturating_duration_since(Instant::now())
    }
}

/// A non-blocking pipe and its capacity.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and ours.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_SETPIPE_SZ takes an int; failure leaves the default.
        let granted = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        let capacity = if granted > 0 {
            granted as usize
        } else {
            64 * 1024
        };
        Ok(Self {
            read,
            write,
            capacity,
        })
    }
}

async fn one_way(from: &TcpStream, to: &TcpStream, pipe: &Pipe, activity: &Activity) -> u64 {
    let mut total = 0u64;
    loop {
        let mut queued = match read_into(from, pipe, activity).await {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        activity.touch();
        while queued > 0 {
            if to.writable().await.is_err() {
                return finish(to, total);
            }
            match to.try_io(Interest::WRITABLE, || {
                splice(pipe.read.as_raw_fd(), to.as_raw_fd(), queued)
            }) {
                Ok(n) => {
                    queued -= n;
                    total += n as u64;
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return finish(to, total),
            }
        }
    }
    finish(to, total)
}

/// Splices what `from` has into the empty `pipe`: the bytes queued, 0 at
/// the end of the stream; `TimedOut` once the connection was idle.
async fn read_into(from: &TcpStream, pipe: &Pipe, activity: &Activity) -> io::Result<usize> {
    loop {
        let left = activity.left();
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        // Waking at `left` re-checks: the other direction may have moved.
        let Ok(ready) = tokio::time::timeout(left, from.readable()).await else {
            continue;
        };
        ready?;
        match from.try_io(Interest::READABLE, || {
            splice(from.as_raw_fd(), pipe.write.as_raw_fd(), pipe.capacity)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Shuts `to` down for writing and returns `total`.
fn finish(to: &TcpStream, total: u64) -> u64 {
    shutdown_write(to);
    total
}

/// Shuts `to` down for writing, passing a half-close on.
pub(crate) fn shutdown_write(to: &TcpStream) {
    // SAFETY: the descriptor is open for the call; failure (peer gone)
    // changes nothing.
    unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) };
}

/// One non-blocking `splice` of at most `len` bytes.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: plain descriptors and null offsets (neither end seeks).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
        (c.unwrap(), s.unwrap().0)
    }

    #[tokio::test]
    async fn relays_both_ways_and_passes_half_closes_on() {
        // client <-> (a | relay | b) <-> server
        let (mut client, a) = pair().await;
        let (b, mut server) = pair().await;
        let relay =
            tokio::spawn(
                async move { splice_both(&a, &b, Duration::from_secs(10)).await.unwrap() },
            );
        let payload: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sent = payload.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, payload, "the half-close arrives after every byte");
        server.write_all(b"done").await.unwrap();
        drop(server);
        assert_eq!(writer.await.unwrap(), b"done");
        assert_eq!(relay.await.unwrap(), (payload.len() as u64, 4));
    }

    #[tokio::test]
    async fn a_silent_direction_waits_while_the_other_streams() {
        let (client, a) = pair().await;
        let (b, mut server) = pair().await;
        let relay = tokio::spawn(async move {
            splice_both(&a, &b, Duration::from_millis(100))
                .await
                .unwrap()
        });
        // The server streams for three idle times; the client says nothing.
        for _ in 0..15 {
            server.write_all(b"tick").await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut probe = [0u8; 1];
        let still_open =
            tokio::time::timeout(Duration::from_millis(1), server.read(&mut probe)).await;
        assert!(
            still_open.is_err(),
            "the silent client's direction was not closed"
        );
        drop(server);
        drop(client);
        assert_eq!(relay.await.unwrap().1, 60);
    }

    #[tokio::test]
    async fn an_idle_connection_ends() {
        let (_client, a) = pair().await;
        let (b, mut server) = pair().await;
        let moved = splice_both(&a, &b, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(moved, (0, 0));
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "the server saw the end of the stream");
    }
}
