//! A secret value in memory: never printed, wiped when dropped.

use std::fmt;

use zeroize::Zeroizing;

/// Largest secret value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A secret's value. `Debug` and `Display` print `<redacted>`; the bytes
/// are overwritten when it is dropped. [`SecretValue::expose`] is the only
/// way to the text.
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The value itself: for encryption and the egress proxy only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let v = SecretValue::new("hunter2".into());
        assert!(!format!("{v:?} {v} {v:#?}").contains("hunter2"));
        assert_eq!(v.expose(), "hunter2");
    }
}
