//! Naming a connection from its first bytes without consuming them: the
//! server name of a TLS ClientHello (SNI) or the Host header of an
//! HTTP/1.x request.
//!
//! The parsers take a prefix of the stream and say whether it suffices:
//! [`Sniff::NeedMore`] asks the caller to wait for more bytes (up to its
//! own limit), anything else is final. Only the first TLS record is read
//! (a ClientHello larger than one record is treated as nameless).

/// What the first bytes of a connection show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniff {
    /// A TLS ClientHello, with its server name if it has one.
    Tls(Option<String>),
    /// An HTTP/1.x request, with its Host (without port) if it has one.
    Http(Option<String>),
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
    Sniff::Tls(client_hello_sni(&buf[5..5 + len]))
}

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

fn client_hello_sni(hs: &[u8]) -> Option<String> {
    let mut r = Reader(hs);
    if r.u8()? != 1 {
        return None;
    }
    r.take(3)?; // handshake length
    r.take(2 + 32)?; // version, random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    let mut ext = Reader(r.vec16()?);
    while !ext.0.is_empty() {
        let kind = ext.u16()?;
        let body = ext.vec16()?;
        if kind != 0 {
            continue;
        }
        let mut list = Reader(Reader(body).vec16()?);
        while !list.0.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec16()?;
            if name_type == 0 {
                let name = std::str::from_utf8(name).ok()?;
                return valid_host(name).then(|| name.to_ascii_lowercase());
            }
        }
    }
    None
}

fn http(buf: &[u8]) -> Sniff {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() >= SNIFF_LIMIT {
            return Sniff::Http(None);
        }
        // A request line is a token, a space: tell early when it is not.
        let token = buf.iter().take_while(|b| b.is_ascii_uppercase()).count();
        return if token < buf.len() && buf[token] != b' ' || token > 16 {
            Sniff::Other
        } else {
            Sniff::NeedMore
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default();
    if !request.ends_with(" HTTP/1.1") && !request.ends_with(" HTTP/1.0") {
        return Sniff::Other;
    }
    let host = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("host").then(|| v.trim())
    });
    Sniff::Http(host.and_then(strip_port).filter(|h| valid_host(h)))
}

fn strip_port(host: &str) -> Option<String> {
    if host.starts_with('[') {
        return None; // IPv6 literals are judged by address.
    }
    let name = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    Some(name.to_ascii_lowercase())
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

    /// A minimal ClientHello record naming `sni`.
    fn client_hello(sni: &str) -> Vec<u8> {
        let mut sni_ext = Vec::new();
        let name = sni.as_bytes();
        let list_len = (name.len() + 3) as u16;
        sni_ext.extend_from_slice(&list_len.to_be_bytes());
        sni_ext.push(0);
        sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni_ext.extend_from_slice(name);
        let mut exts = Vec::new();
        exts.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]); // ec_point_formats
        exts.extend_from_slice(&[0x00, 0x00]);
        exts.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
        exts.extend_from_slice(&sni_ext);
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
        assert_eq!(sniff(b"SSH-2.0-OpenSSH\r\n"), Sniff::Other);
        assert_eq!(sniff(b"\x00\x01binary"), Sniff::Other);
        assert_eq!(sniff(b""), Sniff::NeedMore);
    }
}
