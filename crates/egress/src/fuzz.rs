//! Fuzz targets for what a sandbox's connections are named by (TLS
//! ClientHello SNI and HTTP Host sniffing) and for the firewall's packet
//! log read from netlink. Budget and reproduction: see the `warren-fuzz`
//! crate.

use warren_fuzz::{Target, corpus_dir};

use crate::nflog::parse_datagram;
use crate::sniff::{SNIFF_LIMIT, Sniff, host_of, sniff};

fn target(name: &str) -> Target {
    Target::new(name, corpus_dir(env!("CARGO_MANIFEST_DIR"), name))
}

/// A name sniffed is one the policy can judge: lower case, only name
/// characters.
fn assert_name(name: &str) {
    assert!(!name.is_empty(), "an empty name");
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)),
        "name {name:?}"
    );
}

/// The first byte says where the stream is cut: the verdict on the prefix,
/// once final, is the verdict on the whole (a name cannot depend on how
/// the bytes arrived).
fn sniffing(input: &[u8]) {
    let Some((&cut, stream)) = input.split_first() else {
        return;
    };
    let whole = sniff(stream);
    if let Sniff::Tls(Some(name)) | Sniff::Http(Some(name)) = &whole {
        assert_name(name);
    }
    let prefix = &stream[..stream.len() * usize::from(cut) / 255];
    let early = sniff(prefix);
    if early != Sniff::NeedMore {
        assert_eq!(
            early,
            whole,
            "the verdict on {} bytes changed with more",
            prefix.len()
        );
    }
    if let Ok(text) = std::str::from_utf8(stream)
        && let Ok(host) = host_of(text)
        && !host.starts_with('[')
        && host.parse::<std::net::Ipv4Addr>().is_err()
    {
        assert_name(&host);
    }
}

#[test]
fn fuzz_sniff() {
    target("sniff")
        .max_len(SNIFF_LIMIT)
        .tokens([
            &b"\x16\x03\x01"[..],
            b"\x00\x00",
            b"\x00\x00\x00\x0b\x00\x09\x00\x00\x06a.test",
            b"Host: ",
            b"host:",
            b"\r\n",
            b"\r\n\r\n",
            b"\n",
            b" HTTP/1.1",
            b"CONNECT ",
            b"http://",
            b"[::1]",
            b":443",
            b"EXAMPLE.com.",
            b"\t",
        ])
        .run(sniffing);
}

/// One datagram of the packet log; the first two bytes are the group.
fn packet_log(input: &[u8]) {
    let Some((group, datagram)) = input.split_first_chunk::<2>() else {
        return;
    };
    for packet in parse_datagram(datagram, u16::from_be_bytes(*group)) {
        assert!(packet.port.is_none() || [6, 17, 33, 132, 136].contains(&packet.protocol));
    }
}

#[test]
fn fuzz_nflog() {
    let mut packet = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0];
    packet.extend_from_slice(&[10, 125, 0, 2, 1, 1, 1, 1]);
    packet.extend_from_slice(&[0x9c, 0x40, 0, 53]);
    let attr = |kind: u16, value: &[u8]| {
        let mut a = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize(warren_net::netlink::align4(a.len()), 0);
        a
    };
    let mut body = vec![2, 0, 0, 7];
    body.extend(attr(10, b"deny not_allowed\0"));
    body.extend(attr(9, &packet));
    let mut seed = 7u16.to_be_bytes().to_vec();
    seed.extend(warren_net::netlink::message(4 << 8, 0, 0, &body));
    seed.extend(warren_net::netlink::message(2, 0, 0, &0i32.to_ne_bytes()));
    target("nflog")
        .seed(seed)
        .tokens([
            &b"allow\0"[..],
            b"deny private\0",
            &[0x45],
            &[0x4f],
            &[17],
            &[1],
        ])
        .run(packet_log);
}
