//! The web dashboard, served by the daemon on the API address.
//!
//! - `/` and `/assets/…`: the page, one script module and one style sheet,
//!   compiled into the binary ([`assets`]); public, as they hold no data.
//! - The page logs in by exchanging an API key for a session cookie
//!   (`POST /v1/session`, [`session`]) and then calls the native API
//!   with that cookie only: what it shows and may do is what the key may,
//!   checked by the API's own authorization. Calls that change anything
//!   carry the session's CSRF token.
//! - The fleet is kept live by `GET /v1/sandboxes/watch` (server-sent
//!   events), never by polling.
//!
//! Served only on the API listener, not to sandboxes.

pub mod assets;
pub mod session;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;

pub use session::Sessions;

/// The page's routes.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new();
    for asset in assets::ALL {
        router = router.route(
            asset.path,
            get(move |headers: HeaderMap| async move { assets::serve(asset, &headers) }),
        );
    }
    router
}
