//! Fuzz target for netlink parsing: the framing of [`crate::netlink`]
//! (messages, acknowledgements, errnos) and the socket dump the connection
//! reset reads. Budget and reproduction: see the `warren-fuzz` crate.

use std::net::Ipv4Addr;

use warren_fuzz::{Target, corpus_dir};

use super::*;
use crate::netlink::{NLMSG_HDRLEN, ack_of, align4, errno_of, messages};

/// The first four bytes are the sequence number looked for, the rest one
/// datagram.
fn parse(input: &[u8]) {
    let Some((seq, datagram)) = input.split_first_chunk::<4>() else {
        return;
    };
    let mut consumed = 0;
    for (_, body) in messages(datagram) {
        consumed += align4(NLMSG_HDRLEN + body.len());
        let _ = errno_of(body);
    }
    assert!(
        consumed <= align4(datagram.len()),
        "messages overlap or overrun"
    );
    let _ = ack_of(datagram, u32::from_ne_bytes(*seq));
    let mut found = Vec::new();
    let _ = dump_part(datagram, Ipv4Addr::new(10, 125, 0, 2), &mut found);
    for c in &found {
        let _ = c.closing();
        assert_eq!(&c.id[SOCKID_DST_AT..SOCKID_DST_AT + 4], &[10, 125, 0, 2]);
        let _ = request(&c.id);
    }
}

#[test]
fn fuzz_netlink() {
    let sandbox = Ipv4Addr::new(10, 125, 0, 2);
    let mut dump = 1u32.to_ne_bytes().to_vec();
    dump.extend(message(
        SOCK_DIAG_BY_FAMILY,
        0,
        1,
        &tests::diag_msg(sandbox.octets()),
    ));
    dump.extend(message(
        SOCK_DIAG_BY_FAMILY,
        0,
        1,
        &tests::diag_msg([10, 9, 9, 9]),
    ));
    dump.extend(message(NLMSG_DONE, 0, 1, &0i32.to_ne_bytes()));
    let mut ack = 9u32.to_ne_bytes().to_vec();
    let mut body = (-libc::EPERM).to_ne_bytes().to_vec();
    body.extend_from_slice(&message(1, NLM_F_REQUEST, 9, &[]));
    ack.extend(message(NLMSG_ERROR, 0, 9, &body));
    Target::new("netlink", corpus_dir(env!("CARGO_MANIFEST_DIR"), "netlink"))
        .seed(dump)
        .seed(ack)
        .tokens([
            &NLMSG_ERROR.to_ne_bytes()[..],
            &NLMSG_DONE.to_ne_bytes(),
            &SOCK_DIAG_BY_FAMILY.to_ne_bytes(),
            &16u32.to_ne_bytes(),
            &20u32.to_ne_bytes(),
            &sandbox.octets(),
        ])
        .run(parse);
}
