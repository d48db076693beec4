//! E2B's paged listings: `limit` (1-100, default 100) items per page, in a
//! fixed order; the `nextToken` of a page is the id of the last item of the
//! page before it, sent back in the `x-next-token` header while more follow.

use axum::http::{HeaderMap, HeaderValue};
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
}
