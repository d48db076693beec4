//! Route tables: a list of routes, each `method "path" => handler, rule`
//! with an optional `, layer(...)` for that route alone, turned into the
//! router and the permission table at once, so neither can miss a route
//! the other has (`api::routes`, `e2b`).

/// `router_and_rules! { router_fn; lines… }` defines `router_fn()` (the
/// routes), `rule_for(method, route)` (their rules) and, for tests,
/// `ROUTES`. A list macro hands its lines here: `list!(router_and_rules,
/// router_fn)`.
macro_rules! router_and_rules {
    ($router:ident; $( $method:ident $path:literal => $handler:path, $rule:expr $(, layer($layer:expr))? ; )*) => {
        /// Every route of the list, with its layer.
        pub fn $router() -> axum::Router<$crate::state::AppState> {
            let router = axum::Router::new();
            $(
                let router = router.route(
                    $path,
                    axum::routing::$method($handler) $(.layer($layer))?,
                );
            )*
            router
        }

        /// The rule of `method` on the route template `route` (as axum's
        /// `MatchedPath` spells it); `None` for a route not listed.
        pub fn rule_for(
            method: &axum::http::Method,
            route: &str,
        ) -> Option<$crate::auth::policy::Rule> {
            $(
                if route == $path && method.as_str().eq_ignore_ascii_case(stringify!($method)) {
                    return Some($rule);
                }
            )*
            None
        }

        /// Every listed `(method, route)`.
        #[cfg(test)]
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];
    };
}

pub(crate) use router_and_rules;
