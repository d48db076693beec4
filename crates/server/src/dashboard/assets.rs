//! The dashboard's files, compiled into the binary, and the headers every
//! one is served with.
//!
//! Invariants: nothing is loaded from elsewhere (the page works offline);
//! the Content-Security-Policy allows scripts, styles and connections to
//! this origin only and no inline script, and no page may frame the
//! dashboard; each file is revalidated on every load (`no-cache`) against
//! its strong ETag (SHA-256 of its bytes), so a new daemon's files are
//! used at once and an unchanged file costs a 304.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The policy every dashboard answer carries.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
pub struct Asset {
    /// Where it is served.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

pub const INDEX: Asset = Asset {
    path: "/",
    content_type: "text/html; charset=utf-8",
    body: include_str!("assets/index.html"),
};

pub const SCRIPT: Asset = Asset {
    path: "/assets/app.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/app.js"),
};

pub const STYLE: Asset = Asset {
    path: "/assets/app.css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("assets/app.css"),
};

pub const TERMINAL: Asset = Asset {
    path: "/assets/term.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/term.js"),
};

pub const VERIFIER: Asset = Asset {
    path: "/assets/verify.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/verify.js"),
};

pub const PLAYER: Asset = Asset {
    path: "/assets/replay.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/replay.js"),
};

pub const CHARTS: Asset = Asset {
    path: "/assets/chart.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/chart.js"),
};

/// Every file, in the order of [`ETAGS`].
pub const ALL: [&Asset; 7] = [
    &INDEX, &SCRIPT, &STYLE, &TERMINAL, &VERIFIER, &PLAYER, &CHARTS,
];

static ETAGS: OnceLock<[String; 7]> = OnceLock::new();

fn etag(asset: &Asset) -> &'static str {
    let tags = ETAGS.get_or_init(|| {
        ALL.map(|a| {
            let digest = Sha256::digest(a.body.as_bytes());
            format!("\"{}\"", hex::encode(&digest[..16]))
        })
    });
    let index = ALL.iter().position(|a| a.path == asset.path).unwrap_or(0);
    &tags[index]
}

/// The security headers of every dashboard answer.
pub fn secure(headers: &mut HeaderMap) {
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, value);
    }
}

/// `asset`, or 304 when the client holds it already.
pub fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let tag = etag(asset);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let headers = resp.headers_mut();
    secure(headers);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(tag) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, tag);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_runs_no_inline_script() {
        let html = INDEX.body;
        assert!(html.contains(r#"<script type="module" src="/assets/app.js"></script>"#));
        assert!(html.contains(r#"href="/assets/app.css""#));
        for asset in ALL {
            // SVG's namespace name is a name, never fetched.
            let body = asset.body.replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(!body.contains("http://"), "{}", asset.path);
            assert!(!body.contains("https://"), "{}", asset.path);
        }
        // Every <script> has a src: none is inline.
        assert_eq!(
            html.matches("<script").count(),
            html.matches("<script type=\"module\" src=").count()
        );
        let handlers = html
            .split_whitespace()
            .filter(|w| w.starts_with("on") && w.contains('='));
        assert_eq!(handlers.count(), 0, "no inline event handlers");
        assert!(!html.contains("style="), "no inline styles");
    }

    #[test]
    fn files_are_served_with_their_policy_and_revalidated_by_etag() {
        let resp = serve(&SCRIPT, &HeaderMap::new());
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], SCRIPT.content_type);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        let tag = h[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, tag.clone());
        let resp = serve(&SCRIPT, &again);
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(resp.headers()[header::ETAG], tag);
        // Another file's tag does not match.
        let resp = serve(&STYLE, &again);
        assert_eq!(resp.status(), StatusCode::OK);
    }
}
