//! Argument forms: JSON arrays (exec form), whitespace-separated words and
//! `$VAR` / `${VAR}` / `${VAR:-default}` / `${VAR:+alternative}`
//! substitution (`\$` for a literal dollar), as Docker applies them to
//! ENV, ARG, COPY, ADD, WORKDIR, USER, EXPOSE and FROM.

use std::collections::BTreeMap;

/// The exec form `["a", "b"]`, if `args` is one.
pub(crate) fn json_array(args: &str) -> Option<Result<Vec<String>, String>> {
    let trimmed = args.trim();
    if !trimmed.starts_with('[') {
        return None;
    }
    Some(
        serde_json::from_str::<Vec<String>>(trimmed)
            .map_err(|e| format!("not a JSON array of strings: {e}")),
    )
}

/// Replaces variables from `vars`; unknown ones become empty, as in Docker.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'$') => {
                out.push('$');
                chars.next();
            }
            '$' => match chars.peek() {
                Some('{') => {
                    chars.next();
                    let mut inner = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => inner.push(c),
                            None => return Err(format!("unclosed ${{ in {text:?}")),
                        }
                    }
                    out.push_str(&braced(&inner, vars)?);
                }
                Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                    let mut name = String::new();
                    while let Some(c) = chars.peek() {
                        if c.is_ascii_alphanumeric() || *c == '_' {
                            name.push(*c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
                }
                _ => out.push('$'),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

fn braced(inner: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let (name, rest) = match inner.find(':') {
        Some(i) => (&inner[..i], Some(&inner[i + 1..])),
        None => (inner, None),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("${{{inner}}} is not a variable"));
    }
    let value = vars.get(name).filter(|v| !v.is_empty());
    Ok(match rest {
        None => vars.get(name).cloned().unwrap_or_default(),
        Some(r) if r.starts_with('-') => value.cloned().unwrap_or_else(|| r[1..].to_owned()),
        Some(r) if r.starts_with('+') => value.map(|_| r[1..].to_owned()).unwrap_or_default(),
        Some(_) => return Err(format!("${{{inner}}}: only :- and :+ are supported")),
    })
}

/// `KEY=VALUE` pairs (values may be double-quoted), or the old `KEY VALUE`.
pub(crate) fn pairs(args: &str) -> Result<Vec<(String, String)>, String> {
    let words = shell_words(args)?;
    if let [first, ..] = words.as_slice()
        && !first.contains('=')
    {
        let (key, value) = args
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((args.trim(), ""));
        return Ok(vec![(key.to_owned(), unquote(value.trim()))]);
    }
    words
        .into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("'{w}' is not KEY=VALUE"))
        })
        .collect()
}

/// Splits on unquoted whitespace; double and single quotes group.
pub(crate) fn shell_words(args: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => word.extend(chars.next()),
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                word.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("unclosed quote in {args:?}"));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn unquote(s: &str) -> String {
    shell_words(s)
        .ok()
        .filter(|w| w.len() == 1)
        .and_then(|mut w| w.pop())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_like_docker() {
        let vars = BTreeMap::from([
            ("A".to_owned(), "x".to_owned()),
            ("E".to_owned(), String::new()),
        ]);
        let s = |t| substitute(t, &vars).unwrap();
        assert_eq!(
            s("$A/${A}/\\$A/$NOPE/${E:-d}/${A:-d}/${A:+y}/${E:+y}/$"),
            "x/x/$A//d/x/y//$"
        );
        assert!(substitute("${A", &vars).is_err());
        assert!(substitute("${A:?x}", &vars).is_err());
    }

    #[test]
    fn splits_pairs_and_words() {
        assert_eq!(
            pairs(r#"A=1 B="two words" C=a\ b"#).unwrap(),
            [
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "a b".into())
            ]
        );
        assert_eq!(
            pairs("PATH /usr/bin:/bin").unwrap(),
            [("PATH".into(), "/usr/bin:/bin".into())]
        );
        assert!(pairs("A=1 junk").is_err());
        assert_eq!(
            json_array(r#"["a", "b c"]"#).unwrap().unwrap(),
            ["a", "b c"]
        );
        assert!(json_array("[1]").unwrap().is_err());
        assert!(json_array("echo").is_none());
    }
}
