//! Structure-aware edits of JSON inputs: an input that parses as JSON has
//! one of its values replaced, removed, duplicated or swapped for a value
//! from another corpus entry, and is written back, so a mutation reaches
//! the checks behind the parser instead of only its syntax errors.

use serde_json::Value;

/// Values on the edges of what JSON parsers and validators handle.
const INTERESTING: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "1e308",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "\"\"",
    "\"\\u0000\"",
    "\"../../x\"",
    "\"/\"",
    "\" \"",
    "\"\\u00e9\\u2713\"",
    "[]",
    "{}",
    "{\"\":null}",
    "[[[[[[]]]]]]",
];

/// Whether the JSON text `json` holds a number that is not an integer.
/// serde_json's default parser is not correctly rounded (it may read a
/// float it wrote one unit in the last place off), so round-trip
/// properties hold exactly only for JSON without floats.
pub fn has_float(json: &[u8]) -> bool {
    fn walk(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.is_f64(),
            Value::Array(items) => items.iter().any(walk),
            Value::Object(map) => map.values().any(walk),
            _ => false,
        }
    }
    serde_json::from_slice::<Value>(json).is_ok_and(|v| walk(&v))
}

/// JSON pointers of every value in `v`, the root first.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                pointers(item, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
}

fn unescape(key: &str) -> String {
    key.replace("~1", "/").replace("~0", "~")
}

/// Applies edit `action` at the value numbered `node` (modulo the count);
/// `pick` chooses the replacement. Inputs that are not JSON are kept.
pub(crate) fn edit(
    input: &mut Vec<u8>,
    node: usize,
    action: u8,
    pick: usize,
    entries: &[Vec<u8>],
    tokens: &[Vec<u8>],
) {
    let Ok(mut root) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    let mut all = Vec::new();
    pointers(&root, String::new(), &mut all);
    let at = all[node % all.len()].clone();
    match action % 5 {
        // Replace with an interesting value.
        0 => {
            let text = INTERESTING[pick % INTERESTING.len()];
            if let Some(v) = root.pointer_mut(&at) {
                *v = serde_json::from_str(text).unwrap_or(Value::Null);
            }
        }
        // Remove from its parent (a missing field, a shorter list).
        1 => {
            if let Some((parent, last)) = at.rsplit_once('/')
                && let Some(p) = root.pointer_mut(parent)
            {
                match p {
                    Value::Object(map) => {
                        map.remove(&unescape(last));
                    }
                    Value::Array(items) => {
                        if let Ok(i) = last.parse::<usize>()
                            && i < items.len()
                        {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        // Duplicate into its parent: a repeated element, or the value
        // under a key from the target's tokens.
        2 => {
            if let Some((parent, _)) = at.rsplit_once('/') {
                let value = root.pointer(&at).cloned().unwrap_or(Value::Null);
                if let Some(p) = root.pointer_mut(parent) {
                    match p {
                        Value::Array(items) => items.push(value),
                        Value::Object(map) if !tokens.is_empty() => {
                            let token = &tokens[pick % tokens.len()];
                            let key = String::from_utf8_lossy(token)
                                .trim_matches(|c| c == '"' || c == ':')
                                .to_owned();
                            map.insert(key, value);
                        }
                        _ => {}
                    }
                }
            }
        }
        // Swap for a value of another corpus entry.
        3 => {
            let other = &entries[pick % entries.len()];
            if let Ok(other) = serde_json::from_slice::<Value>(other) {
                let mut theirs = Vec::new();
                pointers(&other, String::new(), &mut theirs);
                let from = &theirs[(pick / entries.len().max(1)) % theirs.len()];
                let value = other.pointer(from).cloned().unwrap_or(Value::Null);
                if let Some(v) = root.pointer_mut(&at) {
                    *v = value;
                }
            }
        }
        // Wrap in a list, or a string in its own quotes.
        _ => {
            if let Some(v) = root.pointer_mut(&at) {
                *v = match v.take() {
                    Value::String(s) => Value::String(format!("\"{s}\"")),
                    other => Value::Array(vec![other]),
                };
            }
        }
    }
    if let Ok(bytes) = serde_json::to_vec(&root) {
        *input = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_reach_nested_values_and_keep_json() {
        let entries = vec![br#"{"x":[1,2]}"#.to_vec()];
        let tokens = vec![b"\"k\":".to_vec()];
        let seed = br#"{"a":{"b":[1,"s",{"c/d":true}]},"e":null}"#.to_vec();
        let mut seen = std::collections::BTreeSet::new();
        for node in 0..9 {
            for action in 0..5 {
                for pick in 0..7 {
                    let mut input = seed.clone();
                    edit(&mut input, node, action, pick, &entries, &tokens);
                    let v: Value = serde_json::from_slice(&input).unwrap();
                    seen.insert(v.to_string());
                }
            }
        }
        assert!(seen.len() > 50, "{}", seen.len());
        let mut not_json = b"\x00binary".to_vec();
        edit(&mut not_json, 1, 0, 0, &entries, &tokens);
        assert_eq!(not_json, b"\x00binary");
    }
}
