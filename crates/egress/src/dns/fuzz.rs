//! Fuzz targets for the resolver's DNS parsing: a sandbox's query (the
//! [`check`] it must pass, and the messages built from what it found) and
//! an upstream's reply. Budget and reproduction: see the `warren-fuzz` crate.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;
use warren_fuzz::{Target, corpus_dir};

use super::check::{Inspected, error_reply, inspect, internet_class};
use super::upstream::{answers, upstream_query};

fn target(name: &str) -> Target {
    Target::new(name, corpus_dir(env!("CARGO_MANIFEST_DIR"), name))
        .max_len(super::UDP_MAX)
        .tokens([
            &[0xc0u8, 0x0c][..],
            &[0xc0, 0x00],
            &[0x3f],
            &[0, 41],
            &[0, 250],
            &[0, 6],
            &[0x81, 0x80],
            b"\x07example\x03com\x00",
        ])
}

/// A client's message: whatever [`inspect`] accepts must be answerable,
/// and what the resolver would send upstream must encode and read back.
fn query(bytes: &[u8]) {
    match inspect(bytes) {
        Inspected::Query(q) => {
            assert!((512..=super::UDP_MAX).contains(&q.max_reply));
            let _ = internet_class(&q.question);
            let reply = Message::from_vec(&error_reply(q.id, Some(&q), ResponseCode::Refused))
                .expect("a refusal of an inspected query reads back");
            assert_eq!(reply.metadata.id, q.id);
            assert_eq!(reply.metadata.message_type, MessageType::Response);
            assert_eq!(reply.queries, vec![q.question.clone()]);
            let ours = upstream_query(0x4242, &q.question, q.checking_disabled)
                .to_vec()
                .expect("the upstream query of an inspected question encodes");
            let ours = Message::from_vec(&ours).expect("the upstream query reads back");
            assert_eq!(ours.queries, vec![q.question.clone()]);
        }
        Inspected::Malformed { id, name } => {
            let _ = name;
            let reply = Message::from_vec(&error_reply(id, None, ResponseCode::FormErr))
                .expect("a FORMERR reads back");
            assert_eq!(reply.metadata.id, id);
        }
        Inspected::Ignore => assert!(bytes.len() < 12 || bytes[2] & 0x80 != 0),
    }
}

#[test]
fn fuzz_dns_query() {
    target("dns_query").run(query);
}

/// An upstream's reply: matched against the question it claims to answer,
/// and its records re-encoded the way the client's reply is built.
fn upstream_reply(bytes: &[u8]) {
    let Ok(reply) = Message::from_vec(bytes) else {
        return;
    };
    if let Some(question) = reply.queries.first() {
        assert_eq!(
            answers(&reply, reply.metadata.id, question),
            reply.metadata.message_type == MessageType::Response && reply.queries.len() == 1
        );
    }
    let mut ours = Message::error_msg(
        reply.metadata.id,
        reply.metadata.op_code,
        ResponseCode::NoError,
    );
    ours.queries = reply.queries.clone();
    ours.answers = reply
        .answers
        .iter()
        .filter(|r| {
            matches!(
                r.record_type(),
                RecordType::A | RecordType::AAAA | RecordType::CNAME
            )
        })
        .cloned()
        .collect();
    ours.authorities = reply
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .cloned()
        .collect();
    let _ = ours.to_vec();
}

#[test]
fn fuzz_dns_upstream_reply() {
    target("dns_upstream_reply").run(upstream_reply);
}
