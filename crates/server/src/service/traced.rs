//! Spans of the operations a trace shows (`warren_otlp`): create, exec,
//! pause, resume and fork, each with its sandbox and team ids, ending
//! failed with the error's message when the operation fails.

use std::future::Future;

use tracing::{Instrument, Span};
use warren_core::WarrenError;

/// A span of an operation on a sandbox; fields left empty are recorded
/// when known.
macro_rules! op_span {
    ($name:literal, $team:expr $(, $($field:tt)+)?) => {
        tracing::info_span!(
            target: warren_otlp::TARGET,
            $name,
            team.id = %$team,
            sandbox.id = tracing::field::Empty,
            error = tracing::field::Empty
            $(, $($field)+)?
        )
    };
}
pub(crate) use op_span;

/// Runs `work` in `span`; a failure marks the span failed.
pub(crate) async fn traced<T>(
    span: &Span,
    work: impl Future<Output = Result<T, WarrenError>>,
) -> Result<T, WarrenError> {
    let result = work.instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("error", e.message.as_str());
    }
    result
}
