//! What a sandbox's DNS message is, before anything is decided on it.
//!
//! A message is answered only when it is a standard query (QR 0, opcode
//! QUERY) with exactly one question, no answer or authority records, and
//! nothing in the additional section but one EDNS OPT record (no TSIG, no
//! other records). Anything else that has a DNS header is `FORMERR`: the
//! resolver never guesses which of several questions to judge. Responses
//! (QR 1) and messages shorter than a header get no answer at all, so the
//! resolver can never be made to answer an answer.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::DNSClass;

/// Length of the fixed DNS header.
const HEADER: usize = 12;

/// A client's query that passed [`inspect`].
#[derive(Debug, Clone)]
pub(crate) struct ClientQuery {
    pub id: u16,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    /// The one question, exactly as the client sent it (case included).
    pub question: Query,
    /// The largest UDP reply the client takes (512 without EDNS).
    pub max_reply: usize,
    /// Whether the client sent an EDNS OPT record (its reply gets one).
    pub edns: bool,
}

/// What [`inspect`] found.
#[derive(Debug, Clone)]
pub(crate) enum Inspected {
    /// One standard query with one question.
    Query(ClientQuery),
    /// Has a DNS header but is not such a query: answer `FORMERR` with
    /// `id` (and the first question's name for the event, if parseable).
    Malformed { id: u16, name: Option<String> },
    /// A response, or not even a header: no answer.
    Ignore,
}

/// Classifies the bytes a client sent (see the module docs).
pub(crate) fn inspect(bytes: &[u8]) -> Inspected {
    if bytes.len() < HEADER || bytes[2] & 0x80 != 0 {
        return Inspected::Ignore;
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let Ok(msg) = Message::from_vec(bytes) else {
        return Inspected::Malformed { id, name: None };
    };
    let name = msg.queries.first().map(|q| q.name().to_ascii());
    let standard = msg.metadata.message_type == MessageType::Query
        && msg.metadata.op_code == OpCode::Query
        && msg.queries.len() == 1
        && msg.answers.is_empty()
        && msg.authorities.is_empty()
        && msg.additionals.is_empty()
        && msg.signature.is_none();
    if !standard {
        return Inspected::Malformed { id, name };
    }
    let max_reply = msg.edns.as_ref().map_or(512, |e| {
        usize::from(e.max_payload()).clamp(512, super::UDP_MAX)
    });
    Inspected::Query(ClientQuery {
        id,
        recursion_desired: msg.metadata.recursion_desired,
        checking_disabled: msg.metadata.checking_disabled,
        question: msg.queries[0].clone(),
        max_reply,
        edns: msg.edns.is_some(),
    })
}

/// The bytes of a reply to a client whose message carried `id`, with no
/// records, `code` and, when given, the client's question.
pub(crate) fn error_reply(id: u16, question: Option<&ClientQuery>, code: ResponseCode) -> Vec<u8> {
    let mut reply = Message::error_msg(id, OpCode::Query, code);
    reply.metadata.recursion_available = true;
    if let Some(q) = question {
        reply.metadata.recursion_desired = q.recursion_desired;
        reply.queries = vec![q.question.clone()];
    }
    // A header, at most one question and no records always encode.
    reply.to_vec().unwrap_or_default()
}

/// Whether the question's class is one the resolver forwards (IN only).
pub(crate) fn internet_class(q: &Query) -> bool {
    q.query_class() == DNSClass::IN
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Edns;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    use super::*;

    fn q(name: &str) -> Query {
        Query::query(Name::from_ascii(name).unwrap(), RecordType::A)
    }

    fn msg(questions: &[&str]) -> Message {
        let mut m = Message::new(77, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        for name in questions {
            m.add_query(q(name));
        }
        m
    }

    fn malformed(m: &Message) -> bool {
        matches!(
            inspect(&m.to_vec().unwrap()),
            Inspected::Malformed { id: 77, .. }
        )
    }

    #[test]
    fn one_question_passes_with_its_case_and_edns_size() {
        let mut m = msg(&["Www.Example.TEST."]);
        let Inspected::Query(c) = inspect(&m.to_vec().unwrap()) else {
            panic!("a plain query")
        };
        assert_eq!(c.id, 77);
        assert!(c.recursion_desired && !c.edns);
        assert_eq!(c.max_reply, 512);
        assert_eq!(c.question.name().to_ascii(), "Www.Example.TEST.");
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        m.set_edns(edns);
        let Inspected::Query(c) = inspect(&m.to_vec().unwrap()) else {
            panic!("EDNS in the additional section is fine")
        };
        assert!(c.edns);
        assert_eq!(c.max_reply, 1232);
    }

    #[test]
    fn several_or_no_questions_are_formerr() {
        assert!(malformed(&msg(&["ok.example.test.", "secret.evil.test."])));
        assert!(malformed(&msg(&[])));
    }

    #[test]
    fn records_from_the_client_are_formerr() {
        let record = Record::from_rdata(
            Name::from_ascii("x.evil.test.").unwrap(),
            60,
            RData::A(A::new(192, 0, 2, 1)),
        );
        let mut answers = msg(&["ok.example.test."]);
        answers.add_answer(record.clone());
        assert!(malformed(&answers));
        let mut authority = msg(&["ok.example.test."]);
        authority.add_authority(record.clone());
        assert!(malformed(&authority));
        let mut additional = msg(&["ok.example.test."]);
        additional.add_additional(record);
        assert!(malformed(&additional));
    }

    #[test]
    fn other_opcodes_are_formerr_and_responses_ignored() {
        let mut notify = msg(&["ok.example.test."]);
        notify.metadata.op_code = OpCode::Notify;
        assert!(malformed(&notify));
        let mut response = msg(&["ok.example.test."]);
        response.metadata.message_type = MessageType::Response;
        assert!(matches!(
            inspect(&response.to_vec().unwrap()),
            Inspected::Ignore
        ));
        assert!(matches!(inspect(&[0; 11]), Inspected::Ignore));
        // A header that promises a question it does not carry.
        let mut cut = msg(&["ok.example.test."]).to_vec().unwrap();
        cut.truncate(20);
        assert!(matches!(
            inspect(&cut),
            Inspected::Malformed { id: 77, name: None }
        ));
    }

    #[test]
    fn error_replies_carry_the_id_and_the_question() {
        let Inspected::Query(c) = inspect(&msg(&["ok.example.test."]).to_vec().unwrap()) else {
            panic!()
        };
        let r = Message::from_vec(&error_reply(77, Some(&c), ResponseCode::Refused)).unwrap();
        assert_eq!(r.metadata.id, 77);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert_eq!(r.queries, vec![c.question]);
        let r = Message::from_vec(&error_reply(9, None, ResponseCode::FormErr)).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        assert!(r.queries.is_empty());
    }
}
