//! Ending the host's TCP connections to a sandbox before a checkpoint.
//!
//! runsc saves an established connection by resetting it
//! (`--net-disconnect-ok`), and with runsc 20240729 a process that was
//! waiting on such a socket through epoll can restore with its epoll
//! instance deaf for good: the agent's listener then completes handshakes
//! but never answers (gVisor issue 13920). The host end of every connection
//! to the sandbox — the daemon's to the agent, proxied clients' to the
//! sandbox's servers, calls from inside to the daemon — is therefore
//! ended first, so the image holds no connection at all:
//! - connections the host is already closing (the daemon drops its pooled
//!   connections to the agent when a checkpoint holds the sandbox) get up
//!   to [`QUIESCE`] to finish gracefully: once the sandbox has closed its
//!   end too, the host's end leaves the connected states (`TIME_WAIT`);
//! - what is left is destroyed, and the sandbox is given [`QUIESCE`] to see
//!   the resets and close its ends.
//!
//! With no connection there is nothing to wait for.
//!
//! Protocol (`NETLINK_SOCK_DIAG`, what `ss -K` does, without a process):
//! - `SOCK_DIAG_BY_FAMILY` with `NLM_F_DUMP` and an `inet_diag_req_v2`
//!   (family, protocol, extensions, padding: one byte each; a bit mask of
//!   TCP states, `u32`; a socket id) lists the host's IPv4 TCP sockets in
//!   those states as `inet_diag_msg` (family, state, timer, retransmits:
//!   one byte each; the socket id; five `u32`), then `NLMSG_DONE`;
//! - a socket id is 48 bytes: source and destination port (big-endian
//!   `u16`), source and destination address (16 bytes each, IPv4 in the
//!   first 4), interface (`u32`) and cookie (two `u32`); the kernel finds a
//!   socket by the whole id;
//! - `SOCK_DESTROY` with `NLM_F_ACK` and a request naming one socket id
//!   aborts that socket (a reset to its peer, `ECONNABORTED` to its
//!   owner); `ENOENT` means it closed meanwhile. It needs `CAP_NET_ADMIN`
//!   and a kernel built with `CONFIG_INET_DIAG_DESTROY`.
//!
//! The states asked for are those `ss -K` kills by default: every state but
//! listening, `SYN_RECV`, `TIME_WAIT` and `CLOSE` (those hold no connection
//! a peer could still use).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

use crate::error::NetError;
use crate::netlink::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, errno_of, exchange, message,
    messages, open_socket, recv, send,
};

/// How long a sandbox gets to close the connections the host closes or
/// resets.
pub const QUIESCE: Duration = Duration::from_millis(20);

/// How often the host's connections are listed while closes finish.
const POLL: Duration = Duration::from_millis(1);

/// How long the kernel may take to list or destroy sockets.
const DIAG_TIMEOUT: Duration = Duration::from_secs(5);

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const SOCK_DESTROY: u16 = 21;
const SOCKID_LEN: usize = 48;
/// `inet_diag_msg`'s socket id follows family, state, timer, retransmits.
const MSG_SOCKID_AT: usize = 4;
/// The destination address within a socket id: after the ports (4) and
/// the source address (16).
const SOCKID_DST_AT: usize = 20;

/// TCP states by number (include/net/tcp_states.h).
const TCP_ESTABLISHED: u32 = 1;
const TCP_SYN_SENT: u32 = 2;
const TCP_FIN_WAIT1: u32 = 4;
const TCP_FIN_WAIT2: u32 = 5;
const TCP_CLOSE_WAIT: u32 = 8;
const TCP_LAST_ACK: u32 = 9;
const TCP_CLOSING: u32 = 11;
/// States of a close the host's end began (or answered): the peer's FIN
/// or final ACK is on its way.
const CLOSING_STATES: [u32; 4] = [TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_LAST_ACK, TCP_CLOSING];
const CONNECTED_STATES: u32 = 1 << TCP_ESTABLISHED
    | 1 << TCP_SYN_SENT
    | 1 << TCP_FIN_WAIT1
    | 1 << TCP_FIN_WAIT2
    | 1 << TCP_CLOSE_WAIT
    | 1 << TCP_LAST_ACK
    | 1 << TCP_CLOSING;

/// Ends every host TCP connection whose peer is `sandbox` (see the module
/// docs); returns how many had to be destroyed.
pub async fn sever_host_connections(sandbox: Ipv4Addr) -> Result<usize, NetError> {
    let op = "resetting the host's connections to the sandbox";
    let destroyed = tokio::time::timeout(DIAG_TIMEOUT, end_connections_to(sandbox))
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => NetError::Command {
                op: op.into(),
                detail: "the kernel cannot destroy sockets (it lacks CONFIG_INET_DIAG_DESTROY)"
                    .into(),
            },
            _ => NetError::io(op, e),
        })?;
    if destroyed > 0 {
        tokio::time::sleep(QUIESCE).await;
    }
    Ok(destroyed)
}

/// Waits for graceful closes, then destroys what is left; returns how many
/// were destroyed.
async fn end_connections_to(sandbox: Ipv4Addr) -> io::Result<usize> {
    let fd = open_socket(NETLINK_SOCK_DIAG)?;
    let deadline = Instant::now() + QUIESCE;
    let mut open = connections_to(&fd, sandbox).await?;
    let mut polled = false;
    // One poll in any case: a close the daemon has just begun may not have
    // reached the socket yet.
    while !open.is_empty()
        && Instant::now() < deadline
        && (!polled || open.iter().any(Connection::closing))
    {
        tokio::time::sleep(POLL).await;
        polled = true;
        open = connections_to(&fd, sandbox).await?;
    }
    let mut buf = vec![0u8; 8 * 1024];
    let mut destroyed = 0;
    for (seq, conn) in (2..).zip(&open) {
        let request = message(
            SOCK_DESTROY,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            &request(&conn.id),
        );
        match exchange(&fd, &request, seq, &mut buf).await {
            Ok(()) => destroyed += 1,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(destroyed)
}

/// One of the host's TCP sockets: its state and its id.
#[derive(Debug)]
struct Connection {
    state: u32,
    id: [u8; SOCKID_LEN],
}

impl Connection {
    fn closing(&self) -> bool {
        CLOSING_STATES.contains(&self.state)
    }
}

/// The host's connected IPv4 TCP sockets whose peer is `dst`.
async fn connections_to(fd: &AsyncFd<OwnedFd>, dst: Ipv4Addr) -> io::Result<Vec<Connection>> {
    let seq = 1;
    let dump = message(
        SOCK_DIAG_BY_FAMILY,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        &request_for_states(CONNECTED_STATES, &[0; SOCKID_LEN]),
    );
    send(fd, &dump).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut found = Vec::new();
    loop {
        let n = recv(fd, &mut buf).await?;
        if dump_part(&buf[..n], dst, &mut found)? {
            return Ok(found);
        }
    }
}

/// Adds the sockets to `dst` in one datagram of a dump to `found`; true
/// once the dump is done.
fn dump_part(datagram: &[u8], dst: Ipv4Addr, found: &mut Vec<Connection>) -> io::Result<bool> {
    for (kind, body) in messages(datagram) {
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = errno_of(body).unwrap_or(libc::EPROTO);
                return Err(io::Error::from_raw_os_error(errno));
            }
            SOCK_DIAG_BY_FAMILY => {
                let Some(id) = body.get(MSG_SOCKID_AT..MSG_SOCKID_AT + SOCKID_LEN) else {
                    continue;
                };
                if id[SOCKID_DST_AT..SOCKID_DST_AT + 4] == dst.octets() {
                    found.push(Connection {
                        state: u32::from(body[1]),
                        id: id.try_into().expect("the slice is SOCKID_LEN bytes"),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

/// The `inet_diag_req_v2` that names one socket, whatever its state.
fn request(id: &[u8; SOCKID_LEN]) -> Vec<u8> {
    request_for_states(u32::MAX, id)
}

fn request_for_states(states: u32, id: &[u8; SOCKID_LEN]) -> Vec<u8> {
    let mut r = vec![libc::AF_INET as u8, libc::IPPROTO_TCP as u8, 0, 0];
    r.extend_from_slice(&states.to_ne_bytes());
    r.extend_from_slice(id);
    r
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;

    /// An `inet_diag_msg` of a socket from 10.0.0.1:40000 to `dst`:80.
    pub(super) fn diag_msg(dst: [u8; 4]) -> Vec<u8> {
        let mut m = vec![libc::AF_INET as u8, TCP_ESTABLISHED as u8, 0, 0];
        m.extend_from_slice(&40000u16.to_be_bytes());
        m.extend_from_slice(&80u16.to_be_bytes());
        m.extend_from_slice(&[10, 0, 0, 1]);
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&dst);
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0; 8 + 20]);
        m[52..56].copy_from_slice(&7u32.to_ne_bytes());
        m
    }

    #[test]
    fn a_dump_yields_the_sockets_to_the_sandbox_until_done() {
        let sandbox = Ipv4Addr::new(10, 125, 0, 2);
        let mut datagram = message(SOCK_DIAG_BY_FAMILY, 0, 1, &diag_msg(sandbox.octets()));
        datagram.extend(message(SOCK_DIAG_BY_FAMILY, 0, 1, &diag_msg([10, 9, 9, 9])));
        datagram.extend(message(SOCK_DIAG_BY_FAMILY, 0, 1, &[1, 2, 3]));
        let mut ids = Vec::new();
        assert!(!dump_part(&datagram, sandbox, &mut ids).unwrap());
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].state, TCP_ESTABLISHED);
        assert!(!ids[0].closing());
        assert_eq!(&ids[0].id[0..4], &[0x9c, 0x40, 0, 80]);
        assert_eq!(
            &ids[0].id[SOCKID_DST_AT..SOCKID_DST_AT + 4],
            &sandbox.octets()
        );
        let done = message(NLMSG_DONE, 0, 1, &0i32.to_ne_bytes());
        assert!(dump_part(&done, sandbox, &mut ids).unwrap());
        let refused = message(NLMSG_ERROR, 0, 1, &(-libc::EPERM).to_ne_bytes());
        let e = dump_part(&refused, sandbox, &mut ids).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn a_destroy_request_names_the_whole_socket_id() {
        let id: [u8; SOCKID_LEN] = std::array::from_fn(|i| i as u8);
        let r = request(&id);
        assert_eq!(r.len(), 56);
        assert_eq!(&r[0..4], &[2, 6, 0, 0]);
        assert_eq!(&r[4..8], &u32::MAX.to_ne_bytes());
        assert_eq!(&r[8..], &id);
    }

    #[tokio::test]
    async fn root_only_the_connections_to_the_address_are_reset() {
        // A listener on a loopback address of its own: the client's socket
        // has it as peer, the accepted one has 127.0.0.1.
        let target = Ipv4Addr::new(127, 77, 0, 9);
        let listener = TcpListener::bind((target, 0)).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let other = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut bystander = TcpStream::connect(other.local_addr().unwrap()).unwrap();
        let (mut bystander_peer, _) = other.accept().unwrap();

        assert_eq!(sever_host_connections(target).await.unwrap(), 1);
        assert_eq!(sever_host_connections(target).await.unwrap(), 0);

        let e = client.write_all(b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECONNABORTED), "{e}");
        let mut byte = [0u8; 1];
        let e = accepted.read(&mut byte).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        bystander.write_all(b"y").unwrap();
        bystander_peer.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"y");
    }

    #[tokio::test]
    async fn root_a_close_the_host_began_finishes_without_a_reset() {
        let target = Ipv4Addr::new(127, 77, 0, 10);
        let listener = TcpListener::bind((target, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        drop(client);
        // The peer takes a few milliseconds to see the end and close.
        let peer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            let mut rest = Vec::new();
            accepted.read_to_end(&mut rest).map(|_| rest)
        });
        assert_eq!(sever_host_connections(target).await.unwrap(), 0);
        assert_eq!(
            peer.join().unwrap().unwrap(),
            b"",
            "an orderly end, no reset"
        );
    }

    #[tokio::test]
    async fn root_a_peer_that_never_closes_is_reset_after_the_grace() {
        let target = Ipv4Addr::new(127, 77, 0, 11);
        let listener = TcpListener::bind((target, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        drop(client);
        assert_eq!(sever_host_connections(target).await.unwrap(), 1);
    }
}
