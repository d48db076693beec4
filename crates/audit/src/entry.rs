//! One audit log entry and its canonical bytes.
//!
//! The leaf hash of an entry is `SHA-256(0x00 ‖ C)` where `C` is the
//! canonical JSON (see [`crate::canonical`]) of the entry object exactly as
//! it is exported: members `action`, `actor`, `details`, `index`, `outcome`,
//! `target`, `team`, `time_ms`, in that (sorted) order, no other member.
//! The entry's `index` is inside the hashed bytes, so an entry cannot be
//! moved to another position without changing its hash.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical::{CanonicalError, write_map, write_string};
use crate::hash::{Hash, leaf_hash};

/// How the audited operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was carried out.
    Ok,
    /// Policy or authorisation refused it.
    Denied,
    /// It was allowed but failed.
    Error,
}

impl Outcome {
    /// The wire name: `ok`, `denied` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

/// One state-changing event: who did what to which object, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position in the log, from 0; assigned by [`crate::MerkleLog::append`].
    pub index: u64,
    /// When it happened, milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
    /// Team the action belongs to.
    pub team: String,
    /// Who acted, outermost first, e.g. `["user:alice", "sandbox:sb_1"]`.
    pub actor: Vec<String>,
    /// Dotted verb, e.g. `sandbox.create`, `process.exec`, `file.write`.
    pub action: String,
    /// The object acted on, e.g. a sandbox id or a path.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Further facts; integers, strings, booleans, null, arrays and objects
    /// only (no floating point numbers).
    #[serde(default)]
    pub details: Map<String, Value>,
}

impl AuditEntry {
    /// The canonical JSON bytes this entry is hashed as.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, CanonicalError> {
        let mut out = String::with_capacity(160);
        out.push_str("{\"action\":");
        write_string(&mut out, &self.action);
        out.push_str(",\"actor\":[");
        for (i, actor) in self.actor.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(&mut out, actor);
        }
        out.push_str("],\"details\":");
        write_map(&mut out, &self.details).map_err(|e| prefix_path(e, "/details"))?;
        out.push_str(",\"index\":");
        out.push_str(&self.index.to_string());
        out.push_str(",\"outcome\":");
        write_string(&mut out, self.outcome.as_str());
        out.push_str(",\"target\":");
        write_string(&mut out, &self.target);
        out.push_str(",\"team\":");
        write_string(&mut out, &self.team);
        out.push_str(",\"time_ms\":");
        out.push_str(&self.time_ms.to_string());
        out.push('}');
        Ok(out.into_bytes())
    }

    /// The RFC 9162 leaf hash of this entry.
    pub fn leaf_hash(&self) -> Result<Hash, CanonicalError> {
        Ok(leaf_hash(&self.canonical_bytes()?))
    }
}

fn prefix_path(err: CanonicalError, prefix: &str) -> CanonicalError {
    let join = |path: String| {
        if path == "/" {
            prefix.to_owned()
        } else {
            format!("{prefix}{path}")
        }
    };
    match err {
        CanonicalError::NonInteger { path, number } => CanonicalError::NonInteger {
            path: join(path),
            number,
        },
        CanonicalError::TooDeep { path } => CanonicalError::TooDeep { path: join(path) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::to_canonical;
    use serde_json::json;

    fn sample() -> AuditEntry {
        AuditEntry {
            index: 7,
            time_ms: 1_700_000_000_123,
            team: "team_a".into(),
            actor: vec!["user:alice".into(), "sandbox:sb_1\"x".into()],
            action: "process.exec".into(),
            target: "sb_1".into(),
            outcome: Outcome::Denied,
            details: json!({"argv": ["rm", "-rf", "/"], "exit": -1})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }
    }

    #[test]
    fn canonical_bytes_equal_canonical_json_of_the_exported_object() {
        let entry = sample();
        let exported = serde_json::to_value(&entry).unwrap();
        let expected = to_canonical(&exported).unwrap();
        assert_eq!(
            String::from_utf8(entry.canonical_bytes().unwrap()).unwrap(),
            expected
        );
    }

    #[test]
    fn fixed_encoding_for_a_known_entry() {
        let bytes = sample().canonical_bytes().unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"action":"process.exec","actor":["user:alice","sandbox:sb_1\"x"],"details":{"argv":["rm","-rf","/"],"exit":-1},"index":7,"outcome":"denied","target":"sb_1","team":"team_a","time_ms":1700000000123}"#
        );
    }

    #[test]
    fn float_in_details_is_refused_with_its_path() {
        let mut entry = sample();
        entry.details.insert("ratio".into(), json!(0.25));
        let err = entry.leaf_hash().unwrap_err();
        assert!(err.to_string().contains("/details/ratio"), "{err}");
    }

    #[test]
    fn unknown_members_are_refused_on_import() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["extra"] = json!(1);
        assert!(serde_json::from_value::<AuditEntry>(v).is_err());
    }
}
