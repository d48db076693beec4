//! E2B's paged listings: `limit` (1-100, default 100) items per page, in a
//! fixed order, the next page's `nextToken` sent back in the `x-next-token`
//! header while more follow.
//!
//! Two kinds of token:
//! - [`page`]: the id of the last item of the page before, found again in
//!   the list (for lists whose items stay put: snapshots);
//! - [`page_after`]: a [`Cursor`], the sort key (start time, id) of the last
//!   item, for sandboxes, which change state and end between pages. The
//!   next page is every item strictly past the cursor in the listing's
//!   order, so an item is never listed twice nor skipped for moving in or
//!   out of the list: the order never depends on state, and the cursor's
//!   own item need not exist any more. Tokens are opaque to clients:
//!   `<start time in unix nanoseconds>.<id>`.

use std::cmp::Ordering;

use axum::http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;
use warren_core::WarrenError;

/// Default and largest page.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 100;

/// The page of `all` after `next_token` (by `id`), and the headers that
/// name the next page's token when there is one.
pub fn page<'a, T>(
    all: &'a [T],
    id: impl Fn(&T) -> &str,
    next_token: Option<&str>,
    limit: usize,
) -> Result<(&'a [T], HeaderMap), WarrenError> {
    let start = match next_token {
        None => 0,
        Some(token) => all
            .iter()
            .position(|x| id(x) == token)
            .map(|i| i + 1)
            .ok_or_else(|| WarrenError::invalid("nextToken is unknown or expired"))?,
    };
    let page = &all[start..(start + limit).min(all.len())];
    let mut headers = HeaderMap::new();
    if start + page.len() < all.len()
        && let Some(last) = page.last()
        && let Ok(v) = HeaderValue::from_str(id(last))
    {
        headers.insert("x-next-token", v);
    }
    Ok((page, headers))
}

/// A position in a listing sorted by (start time, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: OffsetDateTime,
    pub id: String,
}

impl Cursor {
    pub fn token(&self) -> String {
        format!("{}.{}", self.at.unix_timestamp_nanos(), self.id)
    }

    /// Reads a token [`Cursor::token`] wrote; anything else is a 400.
    pub fn parse(token: &str) -> Result<Self, WarrenError> {
        let bad = || WarrenError::invalid(format!("nextToken '{token}' is malformed"));
        let (nanos, id) = token.split_once('.').ok_or_else(bad)?;
        if nanos.is_empty() || !nanos.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
            return Err(bad());
        }
        let at = nanos
            .parse::<i128>()
            .ok()
            .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok())
            .ok_or_else(bad)?;
        Ok(Self {
            at,
            id: id.to_owned(),
        })
    }

    fn cmp_key(&self, at: OffsetDateTime, id: &str) -> Ordering {
        (at, id).cmp(&(self.at, self.id.as_str()))
    }
}

/// The page of `all` (sorted by `key`, ascending or descending) past
/// `after`, and the headers that name the next page's cursor when more
/// follow.
pub fn page_after<'a, T>(
    all: &'a [T],
    key: impl Fn(&T) -> (OffsetDateTime, &str),
    after: Option<&Cursor>,
    descending: bool,
    limit: usize,
) -> (&'a [T], HeaderMap) {
    let start = after.map_or(0, |c| {
        all.partition_point(|x| {
            let (at, id) = key(x);
            match c.cmp_key(at, id) {
                Ordering::Greater => descending,
                Ordering::Less => !descending,
                Ordering::Equal => true,
            }
        })
    });
    let page = &all[start..(start + limit).min(all.len())];
    let mut headers = HeaderMap::new();
    if start + page.len() < all.len()
        && let Some(last) = page.last()
    {
        let (at, id) = key(last);
        let token = Cursor {
            at,
            id: id.to_owned(),
        }
        .token();
        if let Ok(v) = HeaderValue::from_str(&token) {
            headers.insert("x-next-token", v);
        }
    }
    (page, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_token() {
        let all = ["a", "b", "c"];
        let (first, h) = page(&all, |s| s, None, 2).unwrap();
        assert_eq!(first, ["a", "b"]);
        let token = h.get("x-next-token").unwrap().to_str().unwrap();
        let (second, h) = page(&all, |s| s, Some(token), 2).unwrap();
        assert_eq!(second, ["c"]);
        assert!(h.is_empty());
        assert!(page(&all, |s| s, Some("zz"), 2).is_err());
    }

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(s).unwrap()
    }

    #[test]
    fn cursors_survive_their_item_and_keep_their_order() {
        let all = [(at(1), "a"), (at(2), "b"), (at(2), "c"), (at(3), "d")];
        fn key<'a>(x: &'a (OffsetDateTime, &'static str)) -> (OffsetDateTime, &'a str) {
            (x.0, x.1)
        }
        let (first, h) = page_after(&all, key, None, false, 2);
        assert_eq!(first, &all[..2]);
        let token = h.get("x-next-token").unwrap().to_str().unwrap();
        let cursor = Cursor::parse(token).unwrap();
        assert_eq!(
            cursor,
            Cursor {
                at: at(2),
                id: "b".into()
            }
        );
        // `b` has gone: the next page starts past where it was.
        let rest = [all[0], all[2], all[3]];
        let (second, h) = page_after(&rest, key, Some(&cursor), false, 2);
        assert_eq!(second, &all[2..]);
        assert!(h.is_empty());
        // Descending: past means earlier.
        let mut desc = all;
        desc.reverse();
        let (after_c, _) = page_after(
            &desc,
            key,
            Some(&Cursor {
                at: at(2),
                id: "c".into(),
            }),
            true,
            9,
        );
        assert_eq!(after_c, [all[1], all[0]]);
        let (past_all, h) = page_after(
            &desc,
            key,
            Some(&Cursor {
                at: at(0),
                id: "z".into(),
            }),
            true,
            9,
        );
        assert!(past_all.is_empty() && h.is_empty());
    }

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        let c = Cursor {
            at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap(),
            id: "sbx.a".into(),
        };
        assert_eq!(c.token(), "1700000000123456789.sbx.a");
        assert_eq!(Cursor::parse(&c.token()).unwrap(), c);
        for bad in [
            "",
            "abc",
            "12",
            "12.",
            ".x",
            "-1.x",
            "1e3.x",
            "99999999999999999999999999999.x",
        ] {
            let e = Cursor::parse(bad).unwrap_err();
            assert_eq!(e.kind, warren_core::ErrorKind::InvalidArgument, "{bad}");
        }
    }
}
