//! Fuzz target for the plain-HTTP guard's reading of request heads (body
//! framing) and answers (status). Budget and reproduction: see the
//! `warren-fuzz` crate.

use warren_fuzz::{Target, corpus_dir};

use super::{Framing, framing, status};

fn heads(input: &[u8]) {
    let _ = status(input);
    match framing(input) {
        Ok(Framing::Length(_)) => {
            let head = String::from_utf8_lossy(input).to_ascii_lowercase();
            assert!(head.contains("content-length"));
        }
        Ok(Framing::Chunked) => {
            let head = String::from_utf8_lossy(input).to_ascii_lowercase();
            assert!(head.contains("chunked"));
        }
        Ok(Framing::None | Framing::Tunnel { .. }) | Err(_) => {}
    }
}

#[test]
fn fuzz_http_framing() {
    Target::new(
        "http_framing",
        corpus_dir(env!("CARGO_MANIFEST_DIR"), "http_framing"),
    )
    .max_len(crate::sniff::SNIFF_LIMIT)
    .tokens([
        "\r\n",
        ":",
        "Content-Length: ",
        "content-length:18446744073709551616",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: chunked, gzip",
        "Upgrade: h2c",
        "CONNECT ",
        "HTTP/1.1 ",
        "HTTP/1.0 2",
        "\u{ff}",
    ])
    .run(heads);
}
