//! Identifiers. Sandbox ids are exactly [`SandboxId::LEN`] characters of
//! `[a-z0-9]` starting with a letter: safe in paths, host names, interface
//! names and as runsc container ids (which runsc matches by prefix).

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::WarrenError;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_token(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|i| {
            // First character is a letter so ids never look like numbers.
            let range = if i == 0 { 26 } else { ALPHABET.len() };
            ALPHABET[rng.random_range(0..range)] as char
        })
        .collect()
}

fn is_valid_token(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes().all(|b| ALPHABET.contains(&b))
        && s.as_bytes()[0].is_ascii_lowercase()
}

macro_rules! fixed_id {
    ($name:ident, $len:expr, $what:literal) => {
        #[doc = concat!("A ", $what, " id: ", stringify!($len), " characters of `[a-z0-9]`, first a letter.")]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const LEN: usize = $len;

            /// A fresh random id.
            pub fn generate() -> Self {
                Self(random_token(Self::LEN))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = WarrenError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if is_valid_token(s, Self::LEN) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(WarrenError::invalid(format!(
                        concat!("'{}' is not a valid ", $what, " id (expected ", stringify!($len),
                            " characters of a-z and 0-9, starting with a letter)"),
                        s.chars().take(64).collect::<String>()
                    )))
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = WarrenError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fixed_id!(SandboxId, 20, "sandbox");
fixed_id!(KeyId, 12, "API key");
fixed_id!(TeamId, 12, "team");
fixed_id!(UserId, 12, "user");
fixed_id!(SnapshotId, 16, "snapshot");
fixed_id!(VolumeId, 16, "volume");
fixed_id!(RecordingId, 16, "terminal recording");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        for _ in 0..1000 {
            let id = SandboxId::generate();
            assert_eq!(id.as_str().len(), SandboxId::LEN);
            assert_eq!(id.as_str().parse::<SandboxId>().unwrap(), id);
        }
    }

    #[test]
    fn hostile_ids_are_rejected() {
        for bad in [
            "",
            "../../etc/passwdxxxx",
            "ABCDEFGHIJKLMNOPQRST",
            "1abcdefghijklmnopqrs",
            "abcdefghijklmnopqrs",
            "abcdefghijklmnopqrstu",
            "abcdefghij/lmnopqrst",
        ] {
            assert!(bad.parse::<SandboxId>().is_err(), "{bad} accepted");
        }
    }
}
