//! The daemon's HTTP listeners: HTTP/1.1 (with upgrades) over TCP, with
//! the limits that keep one client from starving the rest.
//!
//! Invariants:
//! - A connection must send a whole request head within
//!   [`Limits::header_read`], for its first request and for every next
//!   one on a kept-alive connection: a slow or silent client is closed,
//!   it cannot hold a connection open by saying nothing.
//! - At most [`Limits::per_source`] connections from one source address
//!   (on the sandbox listener a source address is one sandbox), and at
//!   most [`Limits::total`] in all. A connection over either cap is
//!   answered `429` (`too_many_connections`) and closed at once; it never
//!   reaches the router.
//! - Every request carries `ConnectInfo<SocketAddr>` (the peer), as
//!   `axum::serve` would give it.
//! - Shutdown stops accepting, lets requests in flight finish (upgraded
//!   connections are not waited for beyond [`DRAIN`]), then returns.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long shutdown waits for open connections.
pub const DRAIN: Duration = Duration::from_secs(10);
/// How long an over-cap client gets to take its 429.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);
/// Pause after an accept error such as running out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read: Duration,
    pub per_source: usize,
    pub total: usize,
}

/// Open connections, by source address.
#[derive(Default)]
struct Open {
    by_source: HashMap<IpAddr, usize>,
    total: usize,
}

/// One admitted connection; its count is returned on drop.
struct Admitted {
    open: Arc<Mutex<Open>>,
    source: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(n) = open.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                open.by_source.remove(&self.source);
            }
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Source,
    Total,
}

fn admit(open: &Arc<Mutex<Open>>, source: IpAddr, limits: &Limits) -> Result<Admitted, Refusal> {
    let mut guard = open.lock().unwrap_or_else(|e| e.into_inner());
    if guard.total >= limits.total {
        return Err(Refusal::Total);
    }
    let n = guard.by_source.entry(source).or_default();
    if *n >= limits.per_source {
        return Err(Refusal::Source);
    }
    *n += 1;
    guard.total += 1;
    Ok(Admitted {
        open: open.clone(),
        source,
    })
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let _ = tcp.set_nodelay(true);
        match admit(&open, peer.ip(), &limits) {
            Ok(admitted) => {
                connections.spawn(serve_connection(
                    tcp,
                    peer,
                    app.clone(),
                    limits,
                    closing_rx.clone(),
                    admitted,
                ));
            }
            Err(why) => {
                tracing::debug!(%peer, ?why, "connection refused: over the cap");
                tokio::spawn(refuse(tcp, why, limits));
            }
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
    admitted: Admitted,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::trace!(%peer, error = %e, "connection ended");
            }
        }
        () = async { let _ = closing.wait_for(|c| *c).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    drop(admitted);
}

/// Answers a connection over a cap with 429 and closes it.
async fn refuse(mut tcp: TcpStream, why: Refusal, limits: Limits) {
    let message = match why {
        Refusal::Source => format!(
            "too many connections from this address (at most {}): close idle connections and try again",
            limits.per_source
        ),
        Refusal::Total => format!(
            "the daemon holds its most connections ({}): try again in a moment",
            limits.total
        ),
    };
    let body = serde_json::json!({"code": "too_many_connections", "message": message}).to_string();
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE, async {
        let _ = tcp.write_all(answer.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

/// Raises the soft limit of open files to the hard one, and returns the
/// limit in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_source_and_in_all_and_free_on_drop() {
        let open = Arc::new(Mutex::new(Open::default()));
        let limits = Limits {
            header_read: Duration::from_secs(1),
            per_source: 2,
            total: 3,
        };
        let a: IpAddr = "10.0.0.2".parse().unwrap();
        let b: IpAddr = "10.0.0.6".parse().unwrap();
        let first = admit(&open, a, &limits).unwrap();
        let _second = admit(&open, a, &limits).unwrap();
        assert_eq!(admit(&open, a, &limits).err(), Some(Refusal::Source));
        let _third = admit(&open, b, &limits).unwrap();
        assert_eq!(admit(&open, b, &limits).err(), Some(Refusal::Total));
        drop(first);
        assert!(admit(&open, a, &limits).is_ok());
    }
}
