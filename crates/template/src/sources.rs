//! Finds the Debian mirror this host already uses, so no registry host name
//! is ever written into Warren's code or files.
//!
//! Order: the first `URIs:` of a stanza of
//! `/etc/apt/sources.list.d/debian.sources` (deb822) whose `Suites:` include
//! the plain release (not `-security`), else the first `URIs:` at all, else
//! the URI of the first `deb` line of `/etc/apt/sources.list`.

use std::fs;
use std::io;

use crate::error::TemplateError;

const DEB822: &str = "/etc/apt/sources.list.d/debian.sources";
const ONE_LINE: &str = "/etc/apt/sources.list";

/// The mirror URI for `suite` (e.g. `bookworm`) read from the host's apt sources.
pub fn debian_mirror(suite: &str) -> Result<String, TemplateError> {
    if let Some(text) = read_optional(DEB822)?
        && let Some(uri) = from_deb822(&text, suite)
    {
        return Ok(uri);
    }
    if let Some(text) = read_optional(ONE_LINE)?
        && let Some(uri) = from_one_line(&text)
    {
        return Ok(uri);
    }
    Err(TemplateError::NoMirror)
}

fn read_optional(path: &str) -> Result<Option<String>, TemplateError> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TemplateError::io("read", path)(e)),
    }
}

/// The first URI of the deb822 text, preferring a stanza serving `suite`.
pub(crate) fn from_deb822(text: &str, suite: &str) -> Option<String> {
    let mut first = None;
    for stanza in text.split("\n\n") {
        let mut uri = None;
        let mut serves_suite = false;
        for line in stanza.lines() {
            let line = line.trim();
            if let Some(v) = field(line, "URIs") {
                uri = v.split_whitespace().next().map(str::to_owned);
            } else if let Some(v) = field(line, "Suites") {
                serves_suite = v.split_whitespace().any(|s| s == suite);
            }
        }
        if serves_suite && uri.is_some() {
            return uri;
        }
        if first.is_none() {
            first = uri;
        }
    }
    first
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (k, v) = line.split_once(':')?;
    k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
}

/// The URI of the first `deb` line of a one-line-style sources.list.
pub(crate) fn from_one_line(text: &str) -> Option<String> {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut word = words.next()?;
        if word.starts_with('[') {
            // Options: `[arch=amd64 signed-by=...]`, possibly several words.
            while !word.ends_with(']') {
                word = words.next()?;
            }
            word = words.next()?;
        }
        return Some(word.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_prefers_the_release_stanza() {
        let text = "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n\
                    Types: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n";
        assert_eq!(
            from_deb822(text, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn deb822_falls_back_to_the_first_uri() {
        let text = "Types: deb\nURIs: http://a.example/x http://b.example/y\nSuites: trixie\n";
        assert_eq!(
            from_deb822(text, "bookworm").as_deref(),
            Some("http://a.example/x")
        );
        assert_eq!(from_deb822("Types: deb\n", "bookworm"), None);
    }

    #[test]
    fn one_line_skips_comments_sources_and_options() {
        let text = "# deb http://old.example/ bookworm main\ndeb-src http://src.example/ bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n";
        assert_eq!(
            from_one_line(text).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(from_one_line("deb [broken"), None);
    }
}
