//! Parsers for command-line values: durations, memory sizes, `KEY=VALUE`
//! pairs and sandbox ids. Each returns a message fit to show after
//! `invalid value '…' for '--flag':` (clap adds that prefix).

use std::collections::BTreeMap;
use std::time::Duration;

use warren_core::{RecordingId, SandboxId};

/// Why a command-line value was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("expected whole seconds (300) or a duration with units (5m, 1h30m), got '{0}'")]
    Duration(String),
    #[error("durations have a resolution of one second; '{0}' is not a whole number of seconds")]
    SubSecond(String),
    #[error("expected a size in MiB (512) or with a unit (512M, 2G, 2GiB), got '{0}'")]
    Size(String),
    #[error(
        "expected a size in {unit} ({example}) or with a binary unit (512M, 64GiB, 1T), got '{raw}'"
    )]
    Scaled {
        raw: String,
        unit: &'static str,
        example: &'static str,
    },
    #[error("expected KEY=VALUE with a non-empty KEY, got '{0}'")]
    KeyValue(String),
    #[error("{0}")]
    SandboxId(String),
    #[error("{0}")]
    RecordingId(String),
    #[error("expected a positive number (2 = twice as fast), got '{0}'")]
    Speed(String),
}

/// Parses `300` (seconds) or a humantime duration such as `5m`, `1h30m`,
/// `90s` into whole seconds.
pub fn duration_secs(raw: &str) -> Result<u64, ParseError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(ParseError::Duration(raw.into()));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| ParseError::Duration(raw.into()));
    }
    let d: Duration = humantime::parse_duration(s).map_err(|_| ParseError::Duration(raw.into()))?;
    if d.subsec_nanos() != 0 {
        return Err(ParseError::SubSecond(raw.into()));
    }
    Ok(d.as_secs())
}

/// Parses a memory size into MiB: a bare number is MiB; `M`/`MB`/`MiB` and
/// `G`/`GB`/`GiB` (any case) are binary units.
pub fn memory_mib(raw: &str) -> Result<u32, ParseError> {
    let err = || ParseError::Size(raw.into());
    let s = raw.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let n: u64 = num.parse().map_err(|_| err())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 1,
        "g" | "gb" | "gib" => 1024,
        _ => return Err(err()),
    };
    n.checked_mul(factor)
        .and_then(|mib| u32::try_from(mib).ok())
        .ok_or_else(err)
}

/// Parses a size with an optional binary unit (`K`, `M`, `G`, `T`, alone
/// or followed by `B` or `iB`, any case) into multiples of `base` bytes; a
/// bare number already counts in `base`. A size that is not a whole
/// multiple of `base` is refused.
fn scaled(
    raw: &str,
    base: u64,
    unit: &'static str,
    example: &'static str,
) -> Result<u64, ParseError> {
    let err = || ParseError::Scaled {
        raw: raw.chars().take(64).collect(),
        unit,
        example,
    };
    let s = raw.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits_end);
    let n: u64 = num.parse().map_err(|_| err())?;
    let suffix = suffix.trim().to_ascii_lowercase();
    let letter = suffix
        .strip_suffix("ib")
        .or_else(|| suffix.strip_suffix('b'))
        .unwrap_or(&suffix);
    let bytes_per: u64 = match letter {
        "" => return Ok(n),
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(err()),
    };
    let bytes = n.checked_mul(bytes_per).ok_or_else(err)?;
    if !bytes.is_multiple_of(base) {
        return Err(err());
    }
    Ok(bytes / base)
}

/// A size in MiB: `65536`, `64GiB`, `1T`.
pub fn size_mib(raw: &str) -> Result<u64, ParseError> {
    scaled(raw, 1 << 20, "MiB", "65536")
}

/// A size in bytes: `107374182400`, `100GiB`.
pub fn size_bytes(raw: &str) -> Result<u64, ParseError> {
    scaled(raw, 1, "bytes", "1048576")
}

/// Parses one `KEY=VALUE`; the value may be empty and may contain `=`.
pub fn key_value(raw: &str) -> Result<(String, String), ParseError> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(ParseError::KeyValue(raw.chars().take(200).collect())),
    }
}

/// Collects pairs into a map; a later occurrence of a key wins.
pub fn into_map(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

/// Checks the shape of a sandbox id before it goes into a URL.
pub fn sandbox_id(raw: &str) -> Result<SandboxId, ParseError> {
    raw.parse::<SandboxId>()
        .map_err(|e| ParseError::SandboxId(e.message))
}

pub fn recording_id(raw: &str) -> Result<RecordingId, ParseError> {
    raw.parse::<RecordingId>()
        .map_err(|e| ParseError::RecordingId(e.message))
}

/// A playback speed: a finite number above 0.
pub fn speed(raw: &str) -> Result<f64, ParseError> {
    raw.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| ParseError::Speed(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_secs("300"), Ok(300));
        assert_eq!(duration_secs("5m"), Ok(300));
        assert_eq!(duration_secs("1h30m"), Ok(5400));
        assert_eq!(duration_secs(" 90s "), Ok(90));
        assert_eq!(duration_secs("0"), Ok(0));
        assert_eq!(
            duration_secs("1500ms"),
            Err(ParseError::SubSecond("1500ms".into()))
        );
        for bad in [
            "",
            "five",
            "-5",
            "5 parsecs",
            "99999999999999999999999",
            "1.5",
        ] {
            assert!(duration_secs(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(memory_mib("512"), Ok(512));
        assert_eq!(memory_mib("512M"), Ok(512));
        assert_eq!(memory_mib("2G"), Ok(2048));
        assert_eq!(memory_mib("2GiB"), Ok(2048));
        assert_eq!(memory_mib("1 gb"), Ok(1024));
        for bad in ["", "M", "1T", "-1", "1.5G", "99999999999G"] {
            assert!(memory_mib(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn quota_sizes() {
        assert_eq!(size_mib("65536"), Ok(65536));
        assert_eq!(size_mib("64GiB"), Ok(65536));
        assert_eq!(size_mib("64g"), Ok(65536));
        assert_eq!(size_mib("1T"), Ok(1 << 20));
        assert_eq!(size_bytes("100GiB"), Ok(100 << 30));
        assert_eq!(size_bytes("4096"), Ok(4096));
        assert_eq!(size_bytes("1KB"), Ok(1024));
        for bad in ["", "GiB", "1.5G", "1P", "-1", "512K", "99999999999999T"] {
            assert!(size_mib(bad).is_err(), "{bad} accepted");
        }
        assert!(size_bytes("1x").is_err());
    }

    #[test]
    fn key_values() {
        assert_eq!(key_value("A=b"), Ok(("A".into(), "b".into())));
        assert_eq!(key_value("A="), Ok(("A".into(), String::new())));
        assert_eq!(key_value("URL=a=b=c"), Ok(("URL".into(), "a=b=c".into())));
        assert_eq!(key_value("k=v\nw"), Ok(("k".into(), "v\nw".into())));
        for bad in ["", "=", "=v", "novalue"] {
            assert!(key_value(bad).is_err(), "{bad} accepted");
        }
        let long = "x".repeat(10_000);
        let msg = key_value(&long).unwrap_err().to_string();
        assert!(msg.len() < 300, "error message echoes the whole input");
    }

    #[test]
    fn later_keys_win() {
        let pairs = vec![
            ("A".to_owned(), "1".to_owned()),
            ("A".to_owned(), "2".to_owned()),
        ];
        assert_eq!(into_map(&pairs).get("A").map(String::as_str), Some("2"));
    }

    #[test]
    fn sandbox_ids() {
        assert!(sandbox_id("abcdefghij0123456789").is_ok());
        let msg = sandbox_id("../etc").unwrap_err().to_string();
        assert!(msg.contains("not a valid sandbox id"), "{msg}");
    }
}
