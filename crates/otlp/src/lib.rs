//! OpenTelemetry traces of the daemon's operations, sent over OTLP/HTTP
//! with the JSON encoding (`POST {endpoint}/v1/traces`, the collector's
//! port 4318).
//!
//! The daemon marks the spans worth exporting with the target [`TARGET`]
//! (`tracing::info_span!(target: warren_otlp::TARGET, "sandbox.create",
//! sandbox.id = …, team.id = …)`); [`OtlpLayer`] turns each such span into
//! an OTLP span when it closes, and the [`Exporter`] posts them in batches.
//! A span of target [`CONTEXT_TARGET`] carrying a `traceparent` field (a
//! W3C trace context, e.g. from an API request's header) is not exported
//! but makes the exported spans under it join that trace. Give the layer a
//! filter that lets both targets through (e.g. `Targets` with [`TARGET`],
//! whose prefix both share).
//!
//! Invariants: nothing here blocks or fails the traced work. Spans go
//! through a bounded queue; when the collector is slow or away they are
//! dropped and counted, and a failed post is logged and not retried.

mod context;
mod encode;
mod error;
mod export;
mod layer;

pub use context::{SpanId, TraceId, TraceParent};
pub use encode::{Attribute, SpanRecord, Status, encode};
pub use error::OtlpError;
pub use export::{Exporter, ExporterConfig};
pub use layer::OtlpLayer;

/// The target of the spans that are exported.
pub const TARGET: &str = "warren::trace";
/// The target of spans that only carry a caller's trace context.
pub const CONTEXT_TARGET: &str = "warren::trace::context";
