//! The Connect services as tables: the router looks the service up in
//! [`crate::server`]'s table, the service looks the method up in its own
//! [`Method`] table, so serving one more RPC is one table line (and its
//! handler).
//!
//! Order of answers, for every service: the request's content type is
//! checked first, against the kind the method's table line names (a method
//! no line names is checked as unary), then what the service checks for
//! every call (the caller's user, for files), then an unknown method is
//! answered `unimplemented` naming `service/Method`.

use std::future::Future;
use std::pin::Pin;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;
use warren_envd::{Code, ConnectError};

use crate::rpc::{self, RpcResult};

/// The future a handler answers with.
pub type Reply = Pin<Box<dyn Future<Output = Response> + Send>>;

/// What a handler gets: the service's context `C` (the agent's state, or
/// what the service derived from it for this call), the request's headers
/// and its body.
pub type Handler<C> = fn(C, HeaderMap, Body) -> Reply;

/// One method of a Connect service.
pub struct Method<C> {
    pub name: &'static str,
    /// Whether the request is a stream of envelopes
    /// (`application/connect+json`) rather than one JSON message.
    pub streaming: bool,
    pub handler: Handler<C>,
}

/// The line of `table` naming `name`.
pub fn find<C>(table: &'static [Method<C>], name: &str) -> Option<&'static Method<C>> {
    table.iter().find(|m| m.name == name)
}

/// The answer to a method `service`'s table does not name.
pub fn unknown(service: &str, method: &str) -> Response {
    rpc::error_response(&ConnectError::new(
        Code::Unimplemented,
        format!("{service}/{method} is not a known method"),
    ))
}

/// Runs a unary method: decodes the request, runs `handle`, encodes its
/// answer or error.
pub async fn run_unary<Req, Resp, Fut>(body: Body, handle: impl FnOnce(Req) -> Fut) -> Response
where
    Req: DeserializeOwned,
    Resp: Serialize,
    Fut: Future<Output = RpcResult<Resp>>,
{
    rpc::unary_response(
        async {
            let req = rpc::unary_request(body).await?;
            handle(req).await
        }
        .await,
    )
}

/// A table line for a unary method `$name` served by
/// `async fn $handler(ctx, request) -> RpcResult<response>`.
macro_rules! unary {
    ($name:literal, $handler:path) => {
        $crate::methods::Method {
            name: $name,
            streaming: false,
            handler: |ctx, _headers, body| {
                Box::pin($crate::methods::run_unary(body, move |req| {
                    $handler(ctx, req)
                }))
            },
        }
    };
}

/// A table line for a method `$name` whose request is a stream, served by
/// `async fn $handler(ctx, headers, body) -> Response`.
macro_rules! streaming {
    ($name:literal, $handler:path) => {
        $crate::methods::Method {
            name: $name,
            streaming: true,
            handler: |ctx, headers, body| Box::pin($handler(ctx, headers, body)),
        }
    };
}

pub(crate) use {streaming, unary};

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn lines<C>(table: &[Method<C>]) -> Vec<(&'static str, bool)> {
        table.iter().map(|m| (m.name, m.streaming)).collect()
    }

    #[test]
    fn each_service_names_each_method_once_and_streams_where_envd_does() {
        let mut process = lines(crate::process::service::METHODS);
        process.sort();
        assert_eq!(
            process,
            [
                ("CloseStdin", false),
                ("Connect", true),
                ("List", false),
                ("SendInput", false),
                ("SendSignal", false),
                ("Start", true),
                ("StreamInput", true),
                ("Update", false),
            ]
        );
        let mut fs = lines(crate::fs::service::METHODS);
        fs.sort();
        assert_eq!(
            fs,
            [
                ("CreateWatcher", false),
                ("GetWatcherEvents", false),
                ("ListDir", false),
                ("MakeDir", false),
                ("Move", false),
                ("Remove", false),
                ("RemoveWatcher", false),
                ("Stat", false),
                ("WatchDir", true),
            ]
        );
        assert!(find(crate::fs::service::METHODS, "stat").is_none());
    }

    #[tokio::test]
    async fn an_unknown_method_is_unimplemented_naming_service_and_method() {
        let resp = unknown("filesystem.Filesystem", "Nope");
        assert_eq!(resp.status(), StatusCode::NOT_IMPLEMENTED);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "unimplemented");
        assert_eq!(
            body["message"],
            "filesystem.Filesystem/Nope is not a known method"
        );
    }
}
