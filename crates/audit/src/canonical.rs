//! Canonical JSON: the one byte string a JSON value hashes as.
//!
//! Rules (chosen so that `json.dumps(v, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)` in Python produces the same bytes for any value this
//! accepts):
//! - no whitespace anywhere;
//! - object members sorted by key, comparing keys as UTF-8 bytes (the same
//!   order as Unicode code points);
//! - strings as UTF-8; `"` and `\` escaped with a backslash; U+0008, U+0009,
//!   U+000A, U+000C, U+000D as `\b \t \n \f \r`; every other character below
//!   U+0020 as `\u00xx` with lower-case hex; nothing else is escaped;
//! - numbers must be integers in the i64 or u64 range, written in decimal
//!   without sign for non-negative values, leading zeros or exponent. Floating
//!   point numbers are refused: their text forms differ between languages;
//! - nesting deeper than [`MAX_DEPTH`] is refused.

use std::fmt::Write as _;

use serde_json::Value;

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 64;

/// Why a value has no canonical encoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    /// A number that is not an integer; record it as a string instead.
    #[error(
        "non-integer number {number} at {path}: audit details accept integers only, record it as a string"
    )]
    NonInteger {
        /// JSON pointer to the number.
        path: String,
        /// The number as parsed.
        number: String,
    },
    /// Arrays and objects nested too deeply.
    #[error("value nested deeper than {MAX_DEPTH} levels at {path}")]
    TooDeep {
        /// JSON pointer to the first level beyond the limit.
        path: String,
    },
}

/// Appends the canonical encoding of `value` to `out`.
pub fn write_value(out: &mut String, value: &Value) -> Result<(), CanonicalError> {
    let mut path = String::new();
    write_at(out, value, &mut path, 0)
}

/// Appends the canonical encoding of a JSON object given as its map.
pub fn write_map(
    out: &mut String,
    map: &serde_json::Map<String, Value>,
) -> Result<(), CanonicalError> {
    let mut path = String::new();
    write_object(out, map, &mut path, 0)
}

/// The canonical encoding of `value`.
pub fn to_canonical(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::new();
    write_value(&mut out, value)?;
    Ok(out)
}

fn write_at(
    out: &mut String,
    value: &Value,
    path: &mut String,
    depth: usize,
) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                return Err(CanonicalError::NonInteger {
                    path: pointer(path),
                    number: n.to_string(),
                });
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            check_depth(path, depth)?;
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let len = path.len();
                let _ = write!(path, "/{i}");
                write_at(out, item, path, depth + 1)?;
                path.truncate(len);
            }
            out.push(']');
        }
        Value::Object(map) => {
            check_depth(path, depth)?;
            write_object(out, map, path, depth)?;
        }
    }
    Ok(())
}

fn write_object(
    out: &mut String,
    map: &serde_json::Map<String, Value>,
    path: &mut String,
    depth: usize,
) -> Result<(), CanonicalError> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (key, item)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        let len = path.len();
        path.push('/');
        path.push_str(&key.replace('~', "~0").replace('/', "~1"));
        write_at(out, item, path, depth + 1)?;
        path.truncate(len);
    }
    out.push('}');
    Ok(())
}

/// Appends `s` as a canonical JSON string literal.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn check_depth(path: &str, depth: usize) -> Result<(), CanonicalError> {
    if depth >= MAX_DEPTH {
        return Err(CanonicalError::TooDeep {
            path: pointer(path),
        });
    }
    Ok(())
}

fn pointer(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let v = json!({"b": [1, -2, {"z": null, "a": true}], "a": "x", "é": 0, "z": false});
        assert_eq!(
            to_canonical(&v).unwrap(),
            r#"{"a":"x","b":[1,-2,{"a":true,"z":null}],"z":false,"é":0}"#
        );
    }

    #[test]
    fn escapes_only_quote_backslash_and_controls() {
        let v = json!("q\"b\\\u{1}\n\t\u{7f}é/");
        assert_eq!(
            to_canonical(&v).unwrap(),
            "\"q\\\"b\\\\\\u0001\\n\\t\u{7f}é/\""
        );
    }

    #[test]
    fn refuses_floats_with_their_location() {
        let v = json!({"cpu": {"load": [1, 0.5]}});
        assert_eq!(
            to_canonical(&v),
            Err(CanonicalError::NonInteger {
                path: "/cpu/load/1".into(),
                number: "0.5".into()
            })
        );
        assert_eq!(
            to_canonical(&json!(u64::MAX)).unwrap(),
            u64::MAX.to_string()
        );
    }

    #[test]
    fn refuses_deep_nesting() {
        let mut v = json!(1);
        for _ in 0..=MAX_DEPTH {
            v = json!([v]);
        }
        assert!(matches!(
            to_canonical(&v),
            Err(CanonicalError::TooDeep { .. })
        ));
    }
}
