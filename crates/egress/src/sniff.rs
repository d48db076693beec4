//! Naming a connection from its first bytes without consuming them: the
//! server name of a TLS ClientHello (SNI) or the Host header of an
//! HTTP/1.x request.
//!
//! The parsers take a prefix of the stream and say whether it suffices:
//! [`Sniff::NeedMore`] asks the caller to wait for more bytes (up to its
//! own limit), anything else is final. Only the first TLS record is read
//! (a ClientHello larger than one record is treated as nameless).
//!
//! Names must be unambiguous, or the connection is refused
//! ([`Sniff::BadTls`], [`Sniff::BadHttp`]): a ClientHello with more than one
//! server_name extension or more than one host name in it; an HTTP request
//! head with more than one Host header, a folded header line, a CR or LF
//! that is not part of a CRLF, a header name with white space, or a request
//! line that is not `METHOD SP target SP HTTP/1.x` (all `malformed`); a
//! request target in absolute form (`http://host/…`) or authority form
//! (`CONNECT host:port`) whose host is not the Host header's
//! (`name_mismatch`). A target naming a host with no Host header names the
//! request by the target's host. A request head longer than
//! [`SNIFF_LIMIT`] is malformed too: its Host could come after the part
//! read. Bytes that do not start with an upper-case method token of at
//! most 16 letters and a space are not HTTP ([`Sniff::Other`]), decided on
//! the first bytes that show it, so the verdict never depends on how the
//! stream was cut into segments.

use warren_core::network::DenyReason;

/// What the first bytes of a connection show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniff {
    /// A TLS ClientHello, with its server name if it has one.
    Tls(Option<String>),
    /// An HTTP/1.x request, with its host name (without port) if it has
    /// one (an address literal is none: judged by address).
    Http(Option<String>),
    /// A TLS ClientHello whose server name is ambiguous.
    BadTls(DenyReason),
    /// An HTTP/1.x request head whose host is ambiguous.
    BadHttp(DenyReason),
    /// Neither: judged by address only.
    Other,
    /// The prefix is too short to tell.
    NeedMore,
}

/// Most bytes looked at before giving up on a name.
pub const SNIFF_LIMIT: usize = 16 * 1024;

/// Classifies a stream from its first bytes.
pub fn sniff(buf: &[u8]) -> Sniff {
    match buf.first() {
        None => Sniff::NeedMore,
        Some(0x16) => tls(buf),
        Some(b) if b.is_ascii_uppercase() => http(buf),
        Some(_) => Sniff::Other,
    }
}

fn tls(buf: &[u8]) -> Sniff {
    if buf.len() < 5 {
        return Sniff::NeedMore;
    }
    if buf[1] != 3 {
        return Sniff::Other;
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if buf.len() < 5 + len {
        return if 5 + len > SNIFF_LIMIT {
            Sniff::Tls(None)
        } else {
            Sniff::NeedMore
        };
    }
    match client_hello_sni(&buf[5..5 + len]) {
        Ok(name) => Sniff::Tls(name),
        Err(Ambiguous) => Sniff::BadTls(DenyReason::Malformed),
    }
}

/// A ClientHello naming more than one server.
struct Ambiguous;

/// A cursor over a byte slice; every read fails cleanly past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

/// The ClientHello's one host name; `Ok(None)` when it has none or cannot
/// be parsed.
fn client_hello_sni(hs: &[u8]) -> Result<Option<String>, Ambiguous> {
    let Some(ext) = extensions(hs) else {
        return Ok(None);
    };
    let mut ext = Reader(ext);
    let mut found: Option<Option<String>> = None;
    while !ext.0.is_empty() {
        let (Some(kind), Some(body)) = (ext.u16(), ext.vec16()) else {
            break;
        };
        if kind != 0 {
            continue;
        }
        if found.is_some() {
            return Err(Ambiguous);
        }
        found = Some(server_name(body)?);
    }
    Ok(found.flatten())
}

/// The extensions block of a ClientHello handshake message.
fn extensions(hs: &[u8]) -> Option<&[u8]> {
    let mut r = Reader(hs);
    if r.u8()? != 1 {
        return None;
    }
    r.take(3)?; // handshake length
    r.take(2 + 32)?; // version, random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    r.vec16()
}

/// The host name of a server_name extension's body.
fn server_name(body: &[u8]) -> Result<Option<String>, Ambiguous> {
    let Some(list) = Reader(body).vec16() else {
        return Ok(None);
    };
    let mut list = Reader(list);
    let mut name = None;
    while !list.0.is_empty() {
        let (Some(name_type), Some(value)) = (list.u8(), list.vec16()) else {
            break;
        };
        if name_type != 0 {
            continue;
        }
        if name.is_some() {
            return Err(Ambiguous);
        }
        name = Some(
            std::str::from_utf8(value)
                .ok()
                .filter(|n| valid_host(n))
                .map(str::to_ascii_lowercase),
        );
    }
    Ok(name.flatten())
}

fn http(buf: &[u8]) -> Sniff {
    // A request line starts with a method token (upper-case letters) and
    // a space. Checked first, so the verdict on bytes that are not one is
    // `Other` however many of them have arrived.
    let token = buf.iter().take_while(|b| b.is_ascii_uppercase()).count();
    if token < buf.len() && buf[token] != b' ' || token > 16 {
        return Sniff::Other;
    }
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() >= SNIFF_LIMIT {
            // A request head too large to read whole could name any host
            // after the part read.
            let line = find(buf, b"\r\n").map_or(&buf[..0], |n| &buf[..n]);
            return if line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0") {
                Sniff::BadHttp(DenyReason::Malformed)
            } else {
                Sniff::Other
            };
        }
        return Sniff::NeedMore;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default();
    if !request.ends_with(" HTTP/1.1") && !request.ends_with(" HTTP/1.0") {
        return Sniff::Other;
    }
    match request_host(request, lines) {
        Ok(host) => Sniff::Http(host.filter(|h| valid_host(h))),
        Err(reason) => Sniff::BadHttp(reason),
    }
}

/// The host a request names (module docs), lower-case without port.
fn request_host<'a>(
    request: &str,
    headers: impl Iterator<Item = &'a str>,
) -> Result<Option<String>, DenyReason> {
    let malformed = Err(DenyReason::Malformed);
    let parts: Vec<&str> = request.split(' ').collect();
    let [method, target, _version] = parts[..] else {
        return malformed;
    };
    if request.contains(['\r', '\n', '\t']) {
        return malformed;
    }
    let mut host = None;
    for line in headers {
        if line.starts_with([' ', '\t']) || line.contains(['\r', '\n']) {
            return malformed;
        }
        let Some((name, value)) = line.split_once(':') else {
            return malformed;
        };
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
            return malformed;
        }
        if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return malformed;
            }
            host = Some(value.trim_matches([' ', '\t']));
        }
    }
    let host = host.map(host_of).transpose()?;
    let target = target_authority(method, target).map(host_of).transpose()?;
    match (host, target) {
        (Some(h), Some(t)) if h != t => Err(DenyReason::NameMismatch),
        (h, t) => Ok(h.or(t)),
    }
}

/// The authority a request target names: absolute form
/// (`scheme://authority/…`) or, for CONNECT, authority form.
fn target_authority<'a>(method: &str, target: &'a str) -> Option<&'a str> {
    if method == "CONNECT" {
        return Some(target);
    }
    let (_, rest) = target.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Userinfo is not the host: `http://a.example@b.example/` is b.
    Some(authority.rsplit_once('@').map_or(authority, |(_, h)| h))
}

/// An authority's host, lower-case, without port and trailing dot: a
/// host name, an IPv4 literal or a bracketed IPv6 literal; anything else
/// (an empty host, a port that is not a number, a list) is malformed.
pub(crate) fn host_of(authority: &str) -> Result<String, DenyReason> {
    let bad = Err(DenyReason::Malformed);
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, after)) = rest.split_once(']') else {
                return bad;
            };
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return bad;
            }
            match after {
                "" => (&authority[..v6.len() + 2], None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (&authority[..v6.len() + 2], Some(port)),
                    None => return bad,
                },
            }
        }
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
        return bad;
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() || valid_host(&host) {
        Ok(host)
    } else {
        bad
    }
}

/// A host name (not an address literal, which is judged by address).
fn valid_host(name: &str) -> bool {
    name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server_name extension (type, length, body) naming `names`.
    fn sni_ext(names: &[&str]) -> Vec<u8> {
        let mut list = Vec::new();
        for name in names {
            list.push(0);
            list.extend_from_slice(&(name.len() as u16).to_be_bytes());
            list.extend_from_slice(name.as_bytes());
        }
        let mut body = (list.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(&list);
        let mut ext = vec![0x00, 0x00];
        ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
        ext.extend_from_slice(&body);
        ext
    }

    /// A minimal ClientHello record naming `sni`.
    fn client_hello(sni: &str) -> Vec<u8> {
        client_hello_with(&[sni_ext(&[sni])])
    }

    /// A minimal ClientHello record with `extensions` (after one other).
    fn client_hello_with(extensions: &[Vec<u8>]) -> Vec<u8> {
        let mut exts = Vec::new();
        exts.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]); // ec_point_formats
        for e in extensions {
            exts.extend_from_slice(e);
        }
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]);
        body.extend_from_slice(&[0x01, 0x00]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 0x03, 0x01];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn tls_server_names() {
        let hello = client_hello("API.Example.test");
        assert_eq!(sniff(&hello), Sniff::Tls(Some("api.example.test".into())));
        for cut in [1, 4, 5, 40, hello.len() - 1] {
            assert_eq!(sniff(&hello[..cut]), Sniff::NeedMore, "cut at {cut}");
        }
        // Damaged inside: no name, never a panic.
        let mut bad = hello.clone();
        bad[5 + 4 + 2 + 32] = 200;
        assert_eq!(sniff(&bad), Sniff::Tls(None));
    }

    #[test]
    fn tls_names_must_be_one() {
        assert_eq!(sniff(&client_hello_with(&[])), Sniff::Tls(None));
        let one = sni_ext(&["a.example.test"]);
        assert_eq!(
            sniff(&client_hello_with(std::slice::from_ref(&one))),
            Sniff::Tls(Some("a.example.test".into()))
        );
        for ambiguous in [
            vec![one.clone(), sni_ext(&["b.example.test"])],
            vec![one.clone(), one],
            vec![sni_ext(&["a.example.test", "b.example.test"])],
        ] {
            assert_eq!(
                sniff(&client_hello_with(&ambiguous)),
                Sniff::BadTls(DenyReason::Malformed)
            );
        }
    }

    #[test]
    fn request_targets_must_name_the_host() {
        let mismatch = Sniff::BadHttp(DenyReason::NameMismatch);
        let malformed = Sniff::BadHttp(DenyReason::Malformed);
        let ok = Sniff::Http(Some("ok.example.test".into()));
        for (head, want) in [
            (
                "GET http://evil.example/ HTTP/1.1\r\nHost: ok.example.test",
                &mismatch,
            ),
            (
                "GET http://ok.example.test@evil.example/ HTTP/1.1\r\nHost: ok.example.test",
                &mismatch,
            ),
            (
                "GET http://198.18.0.9/ HTTP/1.1\r\nHost: ok.example.test",
                &mismatch,
            ),
            (
                "CONNECT evil.example:443 HTTP/1.1\r\nHost: ok.example.test",
                &mismatch,
            ),
            (
                "GET HTTP://OK.example.test:80/x?y HTTP/1.1\r\nHost: ok.example.test.",
                &ok,
            ),
            (
                "CONNECT ok.example.test:443 HTTP/1.1\r\nHost: ok.example.test:443",
                &ok,
            ),
            // Without a Host header the target names the request.
            ("GET http://ok.example.test/ HTTP/1.0\r\nAccept: */*", &ok),
            (
                "GET / HTTP/1.1\r\nHost: ok.example.test\r\nHost: ok.example.test",
                &malformed,
            ),
            (
                "GET / HTTP/1.1\r\nHost: ok.example.test\r\nhost: evil.example",
                &malformed,
            ),
            (
                "GET / HTTP/1.1\r\nHost: ok.example.test\nHost: evil.example",
                &malformed,
            ),
            (
                "GET / HTTP/1.1\r\nX-A: 1\r\n Host: evil.example",
                &malformed,
            ),
            ("GET / HTTP/1.1\r\nHost : evil.example", &malformed),
            (
                "GET / HTTP/1.1\r\nHost: ok.example.test, evil.example",
                &malformed,
            ),
            ("GET / HTTP/1.1\r\nHost: ok.example.test:x", &malformed),
            ("GET / HTTP/1.1\r\nHost:", &malformed),
            ("GET  / HTTP/1.1\r\nHost: ok.example.test", &malformed),
            ("GET / HTTP/1.1\r\nHost: ok.example.test", &ok),
        ] {
            assert_eq!(&sniff(format!("{head}\r\n\r\n").as_bytes()), want, "{head}");
        }
    }

    #[test]
    fn http_hosts() {
        assert_eq!(
            sniff(b"GET / HTTP/1.1\r\nUser-Agent: x\r\nhost: Files.Example.test:8080\r\n\r\n"),
            Sniff::Http(Some("files.example.test".into()))
        );
        assert_eq!(sniff(b"GET / HTTP/1.0\r\n\r\n"), Sniff::Http(None));
        assert_eq!(
            sniff(b"GET / HTTP/1.1\r\nHost: 198.18.0.6:80\r\n\r\n"),
            Sniff::Http(None)
        );
        assert_eq!(
            sniff(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"),
            Sniff::Http(None)
        );
        assert_eq!(sniff(b"GET / HT"), Sniff::NeedMore);
        let mut huge = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        huge.resize(SNIFF_LIMIT, b'a');
        assert_eq!(sniff(&huge), Sniff::BadHttp(DenyReason::Malformed));
        assert_eq!(sniff(b"SSH-2.0-OpenSSH\r\n"), Sniff::Other);
        assert_eq!(sniff(b"\x00\x01binary"), Sniff::Other);
        assert_eq!(sniff(b""), Sniff::NeedMore);
    }

    #[test]
    fn fuzz_regression_the_verdict_on_a_request_line_does_not_depend_on_how_it_arrives() {
        // The first bytes already show a method that is not upper case; the
        // whole head must not be judged otherwise.
        for head in [
            &b"GeT / HTTP/1.1\r\nHost: a.example\r\n\r\n"[..],
            b"OsT /a HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
            b"GET\t/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
        ] {
            assert_eq!(sniff(&head[..4]), Sniff::Other);
            assert_eq!(
                sniff(head),
                Sniff::Other,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
        let mut long = b"GeT / HTTP/1.1\r\n".to_vec();
        long.resize(SNIFF_LIMIT, b'a');
        assert_eq!(sniff(&long), Sniff::Other);
    }
}
