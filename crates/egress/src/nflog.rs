//! The reader of the firewall's packet log: the decisions the nftables
//! chains take about new non-TCP flows (UDP, ICMP, …), which no proxy sees,
//! become [`NetEventKind::Packet`] events.
//!
//! The sandbox chains (warren-net's `sandbox_rules`) and the forward
//! chain's always-blocked drops (`firewall`) log the first packet of such
//! a flow to the table's NFLOG group
//! ([`Firewall::log_group`](warren_net::Firewall::log_group)), rate-limited
//! per sandbox, with a prefix naming the verdict: `allow` or
//! `deny <reason>` ([`warren_net::log_prefix`]). This module binds that
//! group and turns each logged packet into an event for the [`EventSink`].
//!
//! Protocol (netfilter's `nfnetlink_log`, over an `AF_NETLINK` socket of
//! protocol `NETLINK_NETFILTER`; every integer in the netfilter headers and
//! configuration attributes is big-endian, netlink's own headers are in
//! host order):
//! - every message is a `nlmsghdr` (length, type, flags, sequence, port id;
//!   16 bytes) followed by a `nfgenmsg` (family, version 0, resource id =
//!   the group, big-endian; 4 bytes) and attributes (`nlattr`: length, type;
//!   4 bytes, then the value, padded to 4 bytes);
//! - the message type is the subsystem (`NFNL_SUBSYS_ULOG` = 4) shifted
//!   left by 8, or'ed with `NFULNL_MSG_PACKET` (0) or `NFULNL_MSG_CONFIG` (1);
//! - configuration (requests with an acknowledgement): `NFULA_CFG_CMD`
//!   `PF_BIND` for IPv4 (a no-op on current kernels), `BIND` for the group
//!   (refused with `EPERM` when another socket holds it), then
//!   `NFULA_CFG_MODE` copy packet with a range of [`COPY_RANGE`] bytes (the
//!   IPv4 header and the first four bytes of the transport header: the
//!   ports) and `NFULA_CFG_QTHRESH` 1, so each packet is delivered at once;
//! - a logged packet carries `NFULA_PREFIX` (NUL-terminated) and
//!   `NFULA_PAYLOAD` (the packet from its IPv4 header on, cut at the range).
//!
//! Invariants: the reader never blocks (the socket is non-blocking under
//! tokio's `AsyncFd`), and a malformed or foreign message is skipped, never
//! a panic; a datagram is parsed up to its first malformed header. When the
//! socket's receive buffer overflows the kernel drops packets' log entries
//! (`ENOBUFS`); they are counted and the reader goes on. Events carry no
//! payload bytes, only addresses, the port and the verdict.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFd;
use warren_core::network::Verdict;
use warren_net::log_prefix::verdict_of;
use warren_net::netlink::{
    NLM_F_ACK, NLM_F_REQUEST, align4, exchange, message, messages, open_socket, records, recv,
};

use crate::egress::{NetEvent, NetEventKind};
use crate::error::EgressError;
use crate::sink::EventSink;

/// Bytes of each packet the kernel copies: a maximal IPv4 header (60) and
/// the transport ports (4).
pub const COPY_RANGE: u32 = 64;

/// How long the kernel may take to acknowledge a configuration request.
const CONFIG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULA_CFG_QTHRESH: u16 = 5;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_CFG_CMD_PF_BIND: u8 = 3;
const NFULNL_COPY_PACKET: u8 = 2;
/// `nla_type` bits that are flags (nested, network byte order), not type.
const NLA_TYPE_MASK: u16 = 0x3fff;
const NFGENMSG_LEN: usize = 4;
const NLA_HDRLEN: usize = 4;

/// Transport protocols whose header starts with the source and destination
/// ports: TCP, UDP, DCCP, SCTP, UDP-Lite.
const PORTED: [u8; 5] = [6, 17, 33, 132, 136];

/// One logged packet: the first of a new flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoggedPacket {
    pub verdict: Verdict,
    pub source: Ipv4Addr,
    pub dest: Ipv4Addr,
    /// The IP protocol number (1 ICMP, 17 UDP, …).
    pub protocol: u8,
    /// The destination port, for protocols with ports.
    pub port: Option<u16>,
}

impl LoggedPacket {
    fn event(&self) -> NetEvent {
        NetEvent {
            kind: NetEventKind::Packet,
            source: IpAddr::V4(self.source),
            dest: Some(IpAddr::V4(self.dest)),
            port: self.port,
            name: None,
            verdict: self.verdict,
            bytes_out: 0,
            bytes_in: 0,
        }
    }
}

/// The attributes in `buf`, as (type without flags, value), up to the first
/// malformed one.
fn attributes(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    records(buf, NLA_HDRLEN, |h| {
        let len = usize::from(u16::from_ne_bytes([h[0], h[1]]));
        Some((len, u16::from_ne_bytes([h[2], h[3]]) & NLA_TYPE_MASK))
    })
}

/// The logged packets of `group` in one datagram from the socket; anything
/// else (acknowledgements, other groups, malformed or unknown entries) is
/// skipped.
pub(crate) fn parse_datagram(buf: &[u8], group: u16) -> Vec<LoggedPacket> {
    messages(buf)
        .filter(|(kind, _)| *kind == (NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET))
        .filter_map(|(_, body)| parse_packet(body, group))
        .collect()
}

/// One `NFULNL_MSG_PACKET` body (from the `nfgenmsg` on).
fn parse_packet(body: &[u8], group: u16) -> Option<LoggedPacket> {
    let genmsg = body.get(..NFGENMSG_LEN)?;
    if u16::from_be_bytes([genmsg[2], genmsg[3]]) != group {
        return None;
    }
    let mut verdict = None;
    let mut payload = None;
    for (kind, value) in attributes(&body[NFGENMSG_LEN..]) {
        match kind {
            NFULA_PREFIX => {
                let text = value.split(|b| *b == 0).next().unwrap_or_default();
                verdict = verdict_of(std::str::from_utf8(text).ok()?);
            }
            NFULA_PAYLOAD => payload = Some(value),
            _ => {}
        }
    }
    let (source, dest, protocol, port) = parse_ipv4(payload?)?;
    Some(LoggedPacket {
        verdict: verdict?,
        source,
        dest,
        protocol,
        port,
    })
}

/// Source, destination, protocol and destination port of an IPv4 packet
/// (cut at any length after its header); the port is `None` for protocols
/// without ports, non-first fragments and a cut transport header.
fn parse_ipv4(p: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, Option<u16>)> {
    let first = *p.first()?;
    let header = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header < 20 || p.len() < header {
        return None;
    }
    let fragment_offset = u16::from_be_bytes([p[6], p[7]]) & 0x1fff;
    let protocol = p[9];
    let source = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dest = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let port = match p.get(header + 2..header + 4) {
        Some(b) if PORTED.contains(&protocol) && fragment_offset == 0 => {
            Some(u16::from_be_bytes([b[0], b[1]]))
        }
        _ => None,
    };
    Some((source, dest, protocol, port))
}

/// An attribute to send: type and value.
type Attr<'a> = (u16, &'a [u8]);

/// A configuration request for `group`: header, `nfgenmsg` and `attrs`.
fn config_message(seq: u32, family: u8, group: u16, attrs: &[Attr]) -> Vec<u8> {
    let mut body = vec![family, 0];
    body.extend_from_slice(&group.to_be_bytes());
    for (kind, value) in attrs {
        let len = NLA_HDRLEN + value.len();
        body.extend_from_slice(&(len as u16).to_ne_bytes());
        body.extend_from_slice(&kind.to_ne_bytes());
        body.extend_from_slice(value);
        body.resize(align4(body.len()), 0);
    }
    message(
        NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        &body,
    )
}

/// The reader of one NFLOG group.
#[derive(Debug)]
pub struct PacketLog {
    group: u16,
    sink: EventSink,
}

impl PacketLog {
    pub fn new(group: u16, sink: EventSink) -> Self {
        Self { group, sink }
    }

    /// Binds the group and reads it until the task is aborted.
    pub async fn serve(self) -> Result<tokio::task::JoinHandle<()>, EgressError> {
        let group = self.group;
        let what = |op: &str| format!("{op} NFLOG group {group}");
        let fd = open_socket(libc::NETLINK_NETFILTER)
            .map_err(|e| EgressError::io(what("opening"), e))?;
        let requests: [(u8, &[Attr]); 3] = [
            (
                libc::AF_INET as u8,
                &[(NFULA_CFG_CMD, &[NFULNL_CFG_CMD_PF_BIND])],
            ),
            (
                libc::AF_UNSPEC as u8,
                &[(NFULA_CFG_CMD, &[NFULNL_CFG_CMD_BIND])],
            ),
            (
                libc::AF_UNSPEC as u8,
                &[
                    (
                        NFULA_CFG_MODE,
                        &mode(COPY_RANGE, NFULNL_COPY_PACKET) as &[u8],
                    ),
                    (NFULA_CFG_QTHRESH, &1u32.to_be_bytes()),
                ],
            ),
        ];
        let mut buf = vec![0u8; 64 * 1024];
        for (seq, (family, attrs)) in (1..).zip(requests) {
            let request = config_message(seq, family, group, attrs);
            let acked =
                tokio::time::timeout(CONFIG_TIMEOUT, exchange(&fd, &request, seq, &mut buf))
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()));
            match acked {
                Ok(()) => {}
                Err(e) if seq == 2 && e.raw_os_error() == Some(libc::EPERM) => {
                    return Err(EgressError::LogGroupTaken(group));
                }
                Err(e) => return Err(EgressError::io(what("configuring"), e)),
            }
        }
        tracing::debug!(group, "reading the firewall's packet log");
        Ok(tokio::spawn(async move { self.read(fd, buf).await }))
    }

    async fn read(self, fd: AsyncFd<OwnedFd>, mut buf: Vec<u8>) {
        let mut lost = 0u64;
        loop {
            match recv(&fd, &mut buf).await {
                Ok(n) => {
                    for packet in parse_datagram(&buf[..n], self.group) {
                        self.sink.emit(packet.event());
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    lost += 1;
                    if lost.is_power_of_two() {
                        tracing::warn!(
                            overflows = lost,
                            "the packet log overflowed; some packet events are lost"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the packet log stopped");
                    return;
                }
            }
        }
    }
}

/// `nfulnl_msg_config_mode`: the range (big-endian), the mode, padding.
fn mode(range: u32, mode: u8) -> [u8; 6] {
    let r = range.to_be_bytes();
    [r[0], r[1], r[2], r[3], mode, 0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_core::network::DenyReason;
    use warren_net::netlink::NLMSG_HDRLEN;

    const GROUP: u16 = 0x8123;
    const IPPROTO_ICMP: u8 = 1;

    /// An IPv4 header (20 bytes) of `protocol` from 10.88.0.6 to
    /// 198.18.0.5, and then `rest`.
    fn ipv4(protocol: u8, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protocol, 0, 0];
        p.extend_from_slice(&[10, 88, 0, 6, 198, 18, 0, 5]);
        p.extend_from_slice(rest);
        p
    }

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = ((NLA_HDRLEN + value.len()) as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize(align4(a.len()), 0);
        a
    }

    /// A packet message for `group` with `attrs`.
    fn message(group: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = [libc::AF_INET as u8, 0]
            .into_iter()
            .chain(group.to_be_bytes())
            .chain(attrs.iter().flatten().copied())
            .collect();
        let mut m = ((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&(NFNL_SUBSYS_ULOG << 8).to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&body);
        m
    }

    fn logged(prefix: &str, payload: &[u8]) -> Vec<u8> {
        let mut text = prefix.as_bytes().to_vec();
        text.push(0);
        message(
            GROUP,
            &[
                attr(1, &[8, 0, 2, 0]),
                attr(NFULA_PREFIX, &text),
                attr(NFULA_PAYLOAD, payload),
            ],
        )
    }

    fn udp_to(port: u16) -> Vec<u8> {
        let mut ports = 40000u16.to_be_bytes().to_vec();
        ports.extend_from_slice(&port.to_be_bytes());
        ipv4(17, &ports)
    }

    #[test]
    fn a_udp_packet_becomes_an_event_with_its_destination_port() {
        let packets = parse_datagram(&logged("deny not_allowed", &udp_to(9999)), GROUP);
        assert_eq!(
            packets,
            [LoggedPacket {
                verdict: Verdict::Deny(DenyReason::NotAllowed),
                source: Ipv4Addr::new(10, 88, 0, 6),
                dest: Ipv4Addr::new(198, 18, 0, 5),
                protocol: 17,
                port: Some(9999),
            }]
        );
        let event = packets[0].event();
        assert_eq!(event.kind, NetEventKind::Packet);
        assert_eq!(event.dest, Some("198.18.0.5".parse().unwrap()));
        assert_eq!((event.name, event.bytes_out, event.bytes_in), (None, 0, 0));
    }

    #[test]
    fn icmp_has_no_port_and_every_message_of_a_datagram_counts() {
        let mut datagram = logged("allow", &ipv4(IPPROTO_ICMP, &[8, 0, 0, 0]));
        datagram.extend(logged("deny private_range", &udp_to(53)));
        let packets = parse_datagram(&datagram, GROUP);
        assert_eq!(packets.len(), 2);
        assert_eq!(
            (packets[0].verdict, packets[0].protocol, packets[0].port),
            (Verdict::Allow, IPPROTO_ICMP, None)
        );
        assert_eq!(packets[1].verdict, Verdict::Deny(DenyReason::Private));
    }

    #[test]
    fn a_cut_transport_header_or_a_later_fragment_has_no_port() {
        let cut = ipv4(17, &[0x9c, 0x40]);
        assert_eq!(parse_datagram(&logged("allow", &cut), GROUP)[0].port, None);
        let mut fragment = udp_to(9999);
        fragment[6] = 0x00;
        fragment[7] = 0x10;
        assert_eq!(
            parse_datagram(&logged("allow", &fragment), GROUP)[0].port,
            None
        );
        // Options make the header longer; the ports follow them.
        let mut options = vec![0x46];
        options.extend_from_slice(&ipv4(17, &[])[1..]);
        options.extend_from_slice(&[1, 1, 1, 0, 0, 1, 0, 7]);
        assert_eq!(
            parse_datagram(&logged("allow", &options), GROUP)[0].port,
            Some(7)
        );
    }

    #[test]
    fn malformed_and_foreign_messages_are_skipped() {
        let good = logged("allow", &udp_to(1));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("short header", good[..10].to_vec()),
            ("cut message", good[..good.len() - 3].to_vec()),
            (
                "another group",
                message(
                    GROUP + 1,
                    &[
                        attr(NFULA_PREFIX, b"allow\0"),
                        attr(NFULA_PAYLOAD, &udp_to(1)),
                    ],
                ),
            ),
            (
                "no prefix",
                message(GROUP, &[attr(NFULA_PAYLOAD, &udp_to(1))]),
            ),
            (
                "no payload",
                message(GROUP, &[attr(NFULA_PREFIX, b"allow\0")]),
            ),
            ("foreign prefix", logged("ulogd", &udp_to(1))),
            (
                "not utf-8",
                message(
                    GROUP,
                    &[
                        attr(NFULA_PREFIX, &[0xff, 0xfe, 0]),
                        attr(NFULA_PAYLOAD, &udp_to(1)),
                    ],
                ),
            ),
            ("ipv6", logged("allow", &[0x60; 40])),
            ("short ipv4", logged("allow", &udp_to(1)[..19])),
            (
                "header length below 20",
                logged("allow", &{
                    let mut p = udp_to(1);
                    p[0] = 0x44;
                    p
                }),
            ),
            (
                "header longer than the payload",
                logged("allow", &{
                    let mut p = ipv4(17, &[]);
                    p[0] = 0x4f;
                    p
                }),
            ),
        ];
        for (what, datagram) in &cases {
            assert_eq!(parse_datagram(datagram, GROUP), [], "{what}");
        }
        // A bad attribute length ends the message's attributes, not the
        // reader; the next message still counts.
        let mut bad_attr = message(GROUP, &[attr(NFULA_PREFIX, b"allow\0")]);
        let at = NLMSG_HDRLEN + NFGENMSG_LEN;
        bad_attr[at..at + 2].copy_from_slice(&200u16.to_ne_bytes());
        bad_attr.extend(good.clone());
        assert_eq!(parse_datagram(&bad_attr, GROUP).len(), 1);
        // A message length of zero ends the datagram.
        let mut zero = vec![0; NLMSG_HDRLEN];
        zero.extend(good);
        assert_eq!(parse_datagram(&zero, GROUP), []);
    }

    #[test]
    fn config_requests_ask_for_an_acknowledgement() {
        let m = config_message(
            7,
            libc::AF_UNSPEC as u8,
            GROUP,
            &[(NFULA_CFG_MODE, &mode(COPY_RANGE, NFULNL_COPY_PACKET))],
        );
        assert_eq!(m.len(), 16 + 4 + 4 + 8, "the 6-byte mode pads to 8");
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), 0x0401);
        assert_eq!(u16::from_ne_bytes(m[6..8].try_into().unwrap()), 5);
        assert_eq!(&m[18..20], &GROUP.to_be_bytes());
        assert_eq!(&m[24..30], &[0, 0, 0, 64, 2, 0]);
    }

    /// Runs `nft -f -` with `script`; panics when nft fails.
    fn nft(script: &str) {
        use std::io::Write;
        let mut child = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "nft failed on {script}");
    }

    #[test]
    fn root_the_group_delivers_logged_packets() {
        // A table of its own that logs UDP to a test address on the way
        // out of this host; the reader must see the packet.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let group = 0x7e00 | (std::process::id() as u16 & 0xff);
        let table = format!("nflog_test_{}", std::process::id());
        let script = format!(
            "table inet {table} {{
  chain output {{
    type filter hook output priority filter; policy accept;
    ip daddr 203.0.113.77 udp dport 4567 log prefix \"deny denied_by_rule\" group {group}
    ip daddr 203.0.113.77 drop
  }}
}}
"
        );
        nft(&script);
        let result = rt.block_on(async {
            let (sink, mut rx) = EventSink::channel(16);
            let task = PacketLog::new(group, sink).serve().await?;
            // A second reader of the same group is refused.
            let (other, _) = EventSink::channel(1);
            let taken = PacketLog::new(group, other).serve().await;
            let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            let _ = udp.send_to(b"x", "203.0.113.77:4567");
            let event = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await;
            task.abort();
            Ok::<_, EgressError>((
                event,
                matches!(taken, Err(EgressError::LogGroupTaken(g)) if g == group),
            ))
        });
        nft(&format!("delete table inet {table}\n"));
        let (event, taken) = result.unwrap();
        let event = event.expect("a packet event").expect("an open sink");
        assert_eq!(event.dest, Some("203.0.113.77".parse().unwrap()));
        assert_eq!(event.port, Some(4567));
        assert_eq!(event.verdict, Verdict::Deny(DenyReason::DeniedByRule));
        assert!(
            taken,
            "a second reader of the same group is not refused as such"
        );
    }
}
