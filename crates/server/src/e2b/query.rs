//! The query strings of E2B's listings, read into typed parameters by one
//! extractor, [`E2bQuery`].
//!
//! Decoding: the query is `application/x-www-form-urlencoded` (`+` is a
//! space, `%XX` a byte; a key without `=` has the empty value). Every
//! `key=value` pair is handed to the parameter type in the order it
//! appears ([`QueryParams::take`]), so a type decides what a repeated key
//! means: the listings' scalars (`limit`, `nextToken`, …) keep the last
//! value, the repeatable keys (`metadata`, `state`) add each one. A key
//! the type does not know, or a value it cannot read, is a 400 in E2B's
//! error body (`{"code": 400, "message": …}`) naming the key.

use std::borrow::Cow;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use warren_core::WarrenError;

use super::error::E2bError;
use super::paging::{DEFAULT_PAGE, MAX_PAGE};

/// Parameters read from a query, one pair at a time.
pub trait QueryParams: Default {
    /// Takes one pair, both sides decoded once.
    fn take(&mut self, key: &str, value: Cow<'_, str>) -> Result<(), WarrenError>;
}

/// Extracts `T` from the request's query (no query: `T::default()`).
#[derive(Debug)]
pub struct E2bQuery<T>(pub T);

impl<T: QueryParams, S: Send + Sync> FromRequestParts<S> for E2bQuery<T> {
    type Rejection = E2bError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parse(parts.uri.query())?))
    }
}

/// Reads `query` into `T`.
pub fn parse<T: QueryParams>(query: Option<&str>) -> Result<T, WarrenError> {
    let mut params = T::default();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        params.take(&key, value)?;
    }
    Ok(params)
}

/// The error for a key no parameter type knows.
pub fn unknown(key: &str) -> WarrenError {
    WarrenError::invalid(format!("unknown query parameter '{key}'"))
}

/// A page size: `limit`, 1 to [`MAX_PAGE`]; [`DEFAULT_PAGE`] when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub usize);

impl Default for Limit {
    fn default() -> Self {
        Self(DEFAULT_PAGE)
    }
}

impl std::str::FromStr for Limit {
    type Err = WarrenError;

    fn from_str(v: &str) -> Result<Self, WarrenError> {
        v.parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .map(Self)
            .ok_or_else(|| WarrenError::invalid(format!("limit must be 1-{MAX_PAGE}, got '{v}'")))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    /// A type with a scalar, a repeatable key and a number.
    #[derive(Debug, Default, PartialEq)]
    struct Probe {
        name: Option<String>,
        tags: Vec<String>,
        limit: Limit,
    }

    impl QueryParams for Probe {
        fn take(&mut self, key: &str, value: Cow<'_, str>) -> Result<(), WarrenError> {
            match key {
                "name" => self.name = Some(value.into_owned()),
                "tag" => self.tags.push(value.into_owned()),
                "limit" => self.limit = value.parse()?,
                other => return Err(unknown(other)),
            }
            Ok(())
        }
    }

    #[test]
    fn no_query_and_an_empty_query_are_the_defaults() {
        assert_eq!(parse::<Probe>(None).unwrap(), Probe::default());
        assert_eq!(parse::<Probe>(Some("")).unwrap(), Probe::default());
        assert_eq!(Probe::default().limit, Limit(DEFAULT_PAGE));
    }

    #[test]
    fn a_repeated_scalar_keeps_the_last_value_and_a_repeatable_key_every_one() {
        let p: Probe = parse(Some("name=a&tag=x&name=b&tag=y&tag=x")).unwrap();
        assert_eq!(p.name.as_deref(), Some("b"));
        assert_eq!(p.tags, ["x", "y", "x"]);
    }

    #[test]
    fn values_are_decoded_once_and_empty_values_are_kept() {
        let p: Probe = parse(Some("name=a+b%2Fc%253D&tag=&tag")).unwrap();
        assert_eq!(p.name.as_deref(), Some("a b/c%3D"));
        assert_eq!(p.tags, ["", ""]);
        let p: Probe = parse(Some("name=")).unwrap();
        assert_eq!(p.name.as_deref(), Some(""));
    }

    #[test]
    fn bad_numbers_and_unknown_keys_name_what_is_wrong() {
        for (query, message) in [
            ("limit=", "limit must be 1-100, got ''"),
            ("limit", "limit must be 1-100, got ''"),
            ("limit=0", "limit must be 1-100, got '0'"),
            ("limit=101", "limit must be 1-100, got '101'"),
            ("limit=-1", "limit must be 1-100, got '-1'"),
            ("limit=1.5", "limit must be 1-100, got '1.5'"),
            ("limit=ten", "limit must be 1-100, got 'ten'"),
            ("limit=5&limit=x", "limit must be 1-100, got 'x'"),
            ("colour=red", "unknown query parameter 'colour'"),
            ("Name=a", "unknown query parameter 'Name'"),
        ] {
            let e = parse::<Probe>(Some(query)).unwrap_err();
            assert_eq!(e.kind, warren_core::ErrorKind::InvalidArgument, "{query}");
            assert_eq!(e.message, message, "{query}");
        }
        assert_eq!(parse::<Probe>(Some("limit=100")).unwrap().limit, Limit(100));
        assert_eq!(parse::<Probe>(Some("limit=1")).unwrap().limit, Limit(1));
    }

    #[tokio::test]
    async fn a_malformed_query_is_a_400_in_e2bs_error_body() {
        let app = Router::new().route(
            "/",
            get(|E2bQuery(p): E2bQuery<Probe>| async move { p.tags.join(",") }),
        );
        let resp = app
            .clone()
            .oneshot(Request::get("/?limit=zero").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"code": 400, "message": "limit must be 1-100, got 'zero'"})
        );
        let resp = app
            .oneshot(Request::get("/?tag=a&tag=b").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(&body[..], b"a,b");
    }
}
