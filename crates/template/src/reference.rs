//! How callers name a template: `NAME` (its `latest` tag), `NAME:TAG` or
//! `NAME@VERSION`. Versions are content addresses (16 lowercase hex
//! digits, see [`crate::digest`]); tags are names a person gives a version.

use std::fmt;

use warren_core::spec::validate_template_name;

use crate::error::TemplateError;

/// The tag every build moves to the version it made.
pub const LATEST: &str = "latest";
/// Length of a version id in hex digits.
pub const VERSION_LEN: usize = 16;

/// Which version of a template a reference picks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    Tag(String),
    Version(String),
}

/// A parsed template reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateRef {
    pub name: String,
    pub selector: Selector,
}

impl TemplateRef {
    /// `name`'s `latest` version.
    pub fn latest(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            selector: Selector::Tag(LATEST.into()),
        }
    }

    /// Parses `NAME`, `NAME:TAG` or `NAME@VERSION`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let (name, selector) = if let Some((name, version)) = text.split_once('@') {
            validate_version(version)?;
            (name, Selector::Version(version.to_owned()))
        } else if let Some((name, tag)) = text.split_once(':') {
            validate_tag(tag)?;
            (name, Selector::Tag(tag.to_owned()))
        } else {
            (text, Selector::Tag(LATEST.into()))
        };
        validate_template_name(name).map_err(TemplateError::InvalidName)?;
        Ok(Self {
            name: name.to_owned(),
            selector,
        })
    }

    pub fn is_latest(&self) -> bool {
        self.selector == Selector::Tag(LATEST.into())
    }
}

impl fmt::Display for TemplateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            Selector::Tag(t) if t == LATEST => f.write_str(&self.name),
            Selector::Tag(t) => write!(f, "{}:{t}", self.name),
            Selector::Version(v) => write!(f, "{}@{v}", self.name),
        }
    }
}

/// Tags: 1–63 characters of `[a-z0-9._-]`, starting with a letter or digit.
pub fn validate_tag(tag: &str) -> Result<(), TemplateError> {
    let ok = !tag.is_empty()
        && tag.len() <= 63
        && tag.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && tag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(TemplateError::BadReference(format!(
            "'{}' is not a valid tag (1-63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit)",
            tag.chars().take(70).collect::<String>()
        )))
    }
}

/// Versions: exactly [`VERSION_LEN`] lowercase hex digits.
pub fn validate_version(version: &str) -> Result<(), TemplateError> {
    if version.len() == VERSION_LEN
        && version
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        Ok(())
    } else {
        Err(TemplateError::BadReference(format!(
            "'{}' is not a template version ({VERSION_LEN} hex digits, as `warren template info NAME` lists them)",
            version.chars().take(70).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms_and_prints_them_back() {
        for text in ["base", "base:stable", "base@0123456789abcdef"] {
            assert_eq!(TemplateRef::parse(text).unwrap().to_string(), text);
        }
        assert!(TemplateRef::parse("base").unwrap().is_latest());
        assert_eq!(
            TemplateRef::parse("base:latest").unwrap().to_string(),
            "base"
        );
        assert_eq!(
            TemplateRef::parse("web:v2").unwrap().selector,
            Selector::Tag("v2".into())
        );
    }

    #[test]
    fn refuses_malformed_references() {
        for bad in [
            "",
            "base:",
            "base@",
            ":tag",
            "@0123456789abcdef",
            "base:Tag",
            "base:-x",
            "base@0123",
            "base@0123456789ABCDEF",
            "base:a/b",
            "../x",
            "base:a:b",
            "base@0123456789abcdef0",
        ] {
            assert!(TemplateRef::parse(bad).is_err(), "{bad}");
        }
    }
}
