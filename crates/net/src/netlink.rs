//! The netlink plumbing shared by the connection reset before checkpoints
//! (`sever`) and the packet log (warren-egress's `nflog`): a non-blocking
//! `AF_NETLINK` socket under tokio, message framing and acknowledgements.
//!
//! Framing: every message is a `nlmsghdr` (length including the header,
//! type, flags, sequence number, port id; 16 bytes, host byte order)
//! followed by its body, padded to 4 bytes; a datagram holds one or more.
//! A request sent with `NLM_F_ACK` is answered by an `NLMSG_ERROR` whose
//! body starts with the negated errno (0 for success) and the request's
//! own header. Parsing stops at the first malformed header, never panics.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 1;
pub const NLM_F_ACK: u16 = 4;
/// `NLM_F_ROOT | NLM_F_MATCH`: every object the request's filter matches.
pub const NLM_F_DUMP: u16 = 0x300;

/// One request: header with `kind`, `flags` and `seq`, then `body`.
pub fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = (NLMSG_HDRLEN + body.len()) as u32;
    let mut m = Vec::with_capacity(align4(len as usize));
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m.resize(align4(m.len()), 0);
    m
}

/// The netlink messages of one datagram, as (type, body after the header),
/// up to the first malformed header.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    records(buf, NLMSG_HDRLEN, |h| {
        let len = u32::from_ne_bytes(h[0..4].try_into().ok()?);
        Some((usize::try_from(len).ok()?, u16::from_ne_bytes([h[4], h[5]])))
    })
}

/// Length-prefixed records padded to 4 bytes: `header` bytes, from which
/// `read` takes the record's length (header included) and type, then the
/// body. Ends at the first record whose length does not fit.
pub fn records(
    mut buf: &[u8],
    header: usize,
    read: impl Fn(&[u8]) -> Option<(usize, u16)>,
) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let (len, kind) = read(buf.get(..header)?)?;
        if len < header || len > buf.len() {
            buf = &[];
            return None;
        }
        let body = &buf[header..len];
        buf = buf.get(align4(len)..).unwrap_or(&[]);
        Some((kind, body))
    })
}

pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The errno of an `NLMSG_ERROR` body: 0 for an acknowledgement. A value
/// no errno negates to (`i32::MIN`) is `EPROTO`.
pub fn errno_of(error_body: &[u8]) -> Option<i32> {
    let error = i32::from_ne_bytes(error_body.get(0..4)?.try_into().ok()?);
    Some(error.checked_neg().unwrap_or(libc::EPROTO))
}

/// The errno of the acknowledgement for `seq` in a datagram: `Some(0)` for
/// success, `None` when the datagram holds none.
pub fn ack_of(buf: &[u8], seq: u32) -> Option<i32> {
    messages(buf).find_map(|(kind, body)| {
        if kind != NLMSG_ERROR {
            return None;
        }
        // The request's header follows the errno; its sequence number at 8..12.
        let acked = u32::from_ne_bytes(body.get(12..16)?.try_into().ok()?);
        (acked == seq).then(|| errno_of(body)).flatten()
    })
}

/// A bound, non-blocking netlink socket of `protocol`, registered with tokio.
pub fn open_socket(protocol: libc::c_int) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: plain system call without pointers.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a descriptor we just opened and own alone.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: an all-zero `sockaddr_nl` is valid (port id 0: the kernel
    // assigns one; no multicast groups).
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `addr` is a valid `sockaddr_nl` of the size given, and the
    // descriptor is open.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `OwnedFd` returns the same open descriptor for its whole
    // life, which the `AsyncFd` owns.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

pub async fn send(fd: &AsyncFd<OwnedFd>, msg: &[u8]) -> io::Result<()> {
    fd.async_io(Interest::WRITABLE, |fd| {
        // SAFETY: `msg` is valid for reads of its length; the descriptor
        // is open while `fd` lives.
        done(unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) })
    })
    .await
    .map(drop)
}

pub async fn recv(fd: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> io::Result<usize> {
    fd.async_io(Interest::READABLE, |fd| {
        // SAFETY: `buf` is valid for writes of its length; the descriptor
        // is open while `fd` lives.
        done(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
    })
    .await
}

/// Sends one request made with `NLM_F_ACK` and waits for its
/// acknowledgement; the kernel's refusal is the error.
pub async fn exchange(
    fd: &AsyncFd<OwnedFd>,
    request: &[u8],
    seq: u32,
    buf: &mut [u8],
) -> io::Result<()> {
    send(fd, request).await?;
    loop {
        let n = recv(fd, buf).await?;
        match ack_of(&buf[..n], seq) {
            None => continue,
            Some(0) => return Ok(()),
            Some(errno) => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

/// The byte count of a `send`/`recv`, or its error.
fn done(n: isize) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_framed_padded_and_reads_back() {
        let m = message(20, NLM_F_REQUEST | NLM_F_DUMP, 7, &[1, 2, 3, 4, 5]);
        assert_eq!(m.len(), 24);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 21);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7);
        let read: Vec<_> = messages(&m).collect();
        assert_eq!(read, vec![(20, &[1, 2, 3, 4, 5][..])]);
    }

    #[test]
    fn acknowledgements_are_matched_by_sequence_number() {
        let mut body = (-libc::EPERM).to_ne_bytes().to_vec();
        body.extend_from_slice(&message(1, NLM_F_REQUEST, 9, &[]));
        let ack = message(NLMSG_ERROR, 0, 9, &body);
        assert_eq!(ack_of(&ack, 9), Some(libc::EPERM));
        assert_eq!(ack_of(&ack, 8), None);
        assert_eq!(ack_of(&ack[..10], 9), None);
    }

    #[test]
    fn fuzz_regression_an_errno_of_i32_min_is_a_protocol_error() {
        let mut body = i32::MIN.to_ne_bytes().to_vec();
        body.extend_from_slice(&message(1, NLM_F_REQUEST, 9, &[]));
        let ack = message(NLMSG_ERROR, 0, 9, &body);
        assert_eq!(errno_of(&body), Some(libc::EPROTO));
        assert_eq!(ack_of(&ack, 9), Some(libc::EPROTO));
    }

    #[test]
    fn a_length_past_the_datagram_ends_the_messages() {
        let mut m = message(20, 0, 1, &[0; 8]);
        m[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(messages(&m).count(), 0);
        m[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(messages(&m).count(), 0);
    }
}
