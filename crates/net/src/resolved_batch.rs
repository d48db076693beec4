//! Adding resolved addresses to sandboxes' sets in batches: one `nft`
//! process for every request that arrived while the previous one ran,
//! instead of one per DNS answer.
//!
//! Protocol: [`ResolvedBatcher::add`] queues a request and waits until the
//! `nft` transaction holding it has finished, so the resolver sends its
//! answer only once the addresses are in the set (a client connecting
//! right after the answer is not dropped). A single worker takes the first
//! queued request, everything else queued by then (up to [`MAX_BATCH`]),
//! and runs them as one transaction; when that transaction fails (say one
//! sandbox's set vanished with a kill), each request of the batch is run
//! again alone, so one bad request never fails the others. An idle
//! resolver costs nothing: a request never waits for a timer.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::cmd::run_script;
use crate::error::NetError;
use crate::firewall::Firewall;

/// Most requests in one transaction.
pub const MAX_BATCH: usize = 256;

struct Request {
    slot: u32,
    addrs: Vec<Ipv4Addr>,
    ttl: Duration,
    done: oneshot::Sender<Result<(), String>>,
}

/// The queue to the worker; the worker stops when this is dropped.
#[derive(Debug, Clone)]
pub struct ResolvedBatcher {
    queue: mpsc::UnboundedSender<Request>,
}

impl ResolvedBatcher {
    /// Starts the worker for `firewall`'s table. Call inside a runtime.
    pub fn start(firewall: Firewall) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(work(firewall, rx));
        Self { queue }
    }

    /// Lets the sandbox in `slot` reach `addrs` for `ttl` (see
    /// [`Firewall::add_resolved`]); returns once they are in its set.
    pub async fn add(&self, slot: u32, addrs: &[Ipv4Addr], ttl: Duration) -> Result<(), NetError> {
        if addrs.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        let failed = |detail: String| NetError::Command {
            op: "adding resolved addresses".into(),
            detail,
        };
        self.queue
            .send(Request {
                slot,
                addrs: addrs.to_vec(),
                ttl,
                done,
            })
            .map_err(|_| failed("the set updater has stopped".into()))?;
        wait.await
            .map_err(|_| failed("the set updater has stopped".into()))?
            .map_err(failed)
    }
}

async fn work(firewall: Firewall, mut rx: mpsc::UnboundedReceiver<Request>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let script: String = batch
            .iter()
            .map(|r| firewall.resolved_script(r.slot, &r.addrs, r.ttl))
            .collect();
        match run(&script).await {
            Ok(()) => {
                for r in batch {
                    let _ = r.done.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                let _ = batch.remove(0).done.send(Err(e));
            }
            Err(_) => {
                for r in batch {
                    let alone = run(&firewall.resolved_script(r.slot, &r.addrs, r.ttl)).await;
                    let _ = r.done.send(alone);
                }
            }
        }
    }
}

async fn run(script: &str) -> Result<(), String> {
    run_script("adding resolved addresses", "nft", &["-f", "-"], script)
        .await
        .map_err(|e| warren_core::error::chain(&e))
}
