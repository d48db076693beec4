//! Serde helpers for the proto3 JSON mapping.
//!
//! Invariants of the mapping implemented here:
//! - 32-bit integers are written as numbers; 64-bit integers as decimal
//!   strings. Both are accepted as a number, a decimal string or `null`.
//! - `bytes` are written as standard base64 with padding and accepted in the
//!   standard or URL-safe alphabet, padded or not.
//! - `null` stands for the field's default value.
//! - `google.protobuf.Timestamp` is an RFC 3339 string in UTC.

use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Deserializes `null` as the type's default.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Accepts an integer as a JSON number, a decimal string or `null` (zero).
struct IntVisitor<T>(PhantomData<T>);

impl<T: TryFrom<i128>> IntVisitor<T> {
    fn convert<E: de::Error>(v: i128) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
}

impl<'de, T: TryFrom<i128> + Default> Visitor<'de> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer as a number or a decimal string")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Self::convert(i128::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Self::convert(i128::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v.fract() != 0.0 || !v.is_finite() || v.abs() > 1e38 {
            return Err(E::custom(format!("{v} is not an integer")));
        }
        // The range check above keeps the cast lossless for every integer type we target.
        Self::convert(v as i128)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        let parsed: i128 = v
            .trim()
            .parse()
            .map_err(|_| E::custom(format!("{v:?} is not a decimal integer")))?;
        Self::convert(parsed)
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
}

fn deserialize_int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128> + Default,
{
    d.deserialize_any(IntVisitor(PhantomData))
}

/// `uint32`, `int32`, `sint32`: written as a number.
pub mod int32 {
    use super::*;

    pub fn serialize<S: Serializer, T: Serialize>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }
    pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i128> + Default,
    {
        deserialize_int(d)
    }
}

/// `int64`, `uint64`: written as a decimal string.
pub mod int64 {
    use super::*;

    pub fn serialize<S: Serializer, T: fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i128> + Default,
    {
        deserialize_int(d)
    }
}

/// Decodes base64 in any of the alphabets proto3 JSON parsers must accept.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let engine = match (text.contains(['-', '_']), text.ends_with('=')) {
        (false, true) => &STANDARD,
        (false, false) => &STANDARD_NO_PAD,
        (true, true) => &URL_SAFE,
        (true, false) => &URL_SAFE_NO_PAD,
    };
    engine.decode(text)
}

/// `bytes`: base64 text.
pub mod b64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        decode_base64(&text).map_err(|e| de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// A `google.protobuf.Timestamp`: seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: i32,
}

impl Timestamp {
    fn to_datetime(self) -> Option<time::OffsetDateTime> {
        let total = i128::from(self.seconds) * 1_000_000_000 + i128::from(self.nanos);
        time::OffsetDateTime::from_unix_timestamp_nanos(total).ok()
    }

    /// Parses an RFC 3339 timestamp (any offset; stored in UTC).
    pub fn parse(text: &str) -> Option<Self> {
        let dt = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()?;
        Some(Self {
            seconds: dt.unix_timestamp(),
            nanos: i32::try_from(dt.nanosecond()).ok()?,
        })
    }
}

impl From<std::time::SystemTime> for Timestamp {
    fn from(t: std::time::SystemTime) -> Self {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Self {
                seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
            },
            Err(e) => {
                let d = e.duration();
                let mut seconds = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                let mut nanos = i32::try_from(d.subsec_nanos()).unwrap_or(0);
                if nanos > 0 {
                    seconds -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                Self { seconds, nanos }
            }
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let dt = self
            .to_datetime()
            .ok_or_else(|| serde::ser::Error::custom("timestamp out of range"))?;
        let text = dt
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text)
            .ok_or_else(|| de::Error::custom(format!("{text:?} is not an RFC 3339 timestamp")))
    }
}

/// Declares a proto3 enum: written as its name, read from its name or number.
/// Numbers without a name are kept as `Unknown(n)` (proto3 enums are open).
macro_rules! proto_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $num:literal => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version does not know.
            Unknown(i32),
        }

        impl $name {
            /// The wire number.
            pub fn number(self) -> i32 {
                match self {
                    $(Self::$variant => $num,)+
                    Self::Unknown(n) => n,
                }
            }
            /// The value for a wire number.
            pub fn from_number(n: i32) -> Self {
                match n {
                    $($num => Self::$variant,)+
                    other => Self::Unknown(other),
                }
            }
            /// The value for a proto name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::from_number(0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Self::$variant => s.serialize_str($text),)+
                    Self::Unknown(n) => s.serialize_i32(*n),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = Option::<serde_json::Value>::deserialize(d)?;
                match value {
                    None => Ok(Self::default()),
                    Some(serde_json::Value::String(s)) => Self::from_name(&s).ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            concat!("unknown ", stringify!($name), " value {:?}"), s
                        ))
                    }),
                    Some(serde_json::Value::Number(n)) => n
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .map(Self::from_number)
                        .ok_or_else(|| serde::de::Error::custom(format!(
                            concat!("invalid ", stringify!($name), " number {}"), n
                        ))),
                    Some(other) => Err(serde::de::Error::custom(format!(
                        concat!("invalid ", stringify!($name), " value {}"), other
                    ))),
                }
            }
        }
    };
}
pub(crate) use proto_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Sample {
        #[serde(with = "int64")]
        big: i64,
        #[serde(with = "int32")]
        small: u32,
        #[serde(with = "b64")]
        data: Vec<u8>,
    }

    #[test]
    fn int64_written_as_string_and_read_from_both() {
        let s = Sample {
            big: -5,
            small: 7,
            data: vec![0xff, 0],
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"big": "-5", "small": 7, "data": "/wA="})
        );
        let back: Sample =
            serde_json::from_str(r#"{"big": -5, "small": "7", "data": "_wA"}"#).unwrap();
        assert_eq!(back, s);
        let nulls: Sample =
            serde_json::from_str(r#"{"big": null, "small": null, "data": null}"#).unwrap();
        assert_eq!(nulls, Sample::default());
    }

    #[test]
    fn out_of_range_and_garbage_are_errors() {
        assert!(serde_json::from_str::<Sample>(r#"{"small": -1}"#).is_err());
        assert!(serde_json::from_str::<Sample>(r#"{"small": 4294967296}"#).is_err());
        assert!(serde_json::from_str::<Sample>(r#"{"big": "12x"}"#).is_err());
        assert!(serde_json::from_str::<Sample>(r#"{"small": 1.5}"#).is_err());
        assert!(serde_json::from_str::<Sample>(r#"{"data": "***"}"#).is_err());
    }

    #[test]
    fn timestamp_round_trips_as_rfc3339() {
        let t = Timestamp {
            seconds: 1_700_000_000,
            nanos: 500_000_000,
        };
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text, "\"2023-11-14T22:13:20.5Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&text).unwrap(), t);
        let offset: Timestamp = serde_json::from_str("\"2023-11-14T23:13:20+01:00\"").unwrap();
        assert_eq!(offset.seconds, 1_700_000_000);
    }
}
