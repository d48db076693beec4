//! The `tracing` layer that turns the daemon's operation spans into OTLP
//! spans.
//!
//! A span of target [`crate::TARGET`] gets a span id when it opens, the
//! trace of its nearest exported ancestor (or of the nearest ancestor with
//! a `traceparent` field, or a new trace), and is queued for export when
//! it closes. Its fields become attributes, except `error`, which marks it
//! failed with that message, and `traceparent`.

use std::fmt;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::TARGET;
use crate::context::{SpanId, TraceId, TraceParent};
use crate::encode::{Attribute, SpanRecord, Status};
use crate::export::Queue;

/// Where a span stands while it is open (kept in its extensions).
struct Open {
    record: SpanRecord,
}

/// A caller's context, found on a span that is not exported itself.
struct Remote(TraceParent);

/// Collects a span's fields.
#[derive(Default)]
struct Fields {
    attributes: Vec<(String, Attribute)>,
    error: Option<String>,
    traceparent: Option<String>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Attribute) {
        match (field.name(), value) {
            ("error", Attribute::Str(s)) => self.error = Some(s),
            ("error", other) => self.error = Some(format!("{other:?}")),
            ("traceparent", Attribute::Str(s)) => self.traceparent = Some(s),
            (name, value) => {
                self.attributes.retain(|(k, _)| k != name);
                self.attributes.push((name.to_owned(), value));
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Attribute::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Attribute::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let value =
            i64::try_from(value).map_or_else(|_| Attribute::Str(value.to_string()), Attribute::Int);
        self.put(field, value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Attribute::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Attribute::Bool(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Attribute::Str(format!("{value:?}")));
    }
}

/// Exports the spans of target [`TARGET`] to an [`crate::Exporter`].
pub struct OtlpLayer {
    queue: Queue,
}

impl OtlpLayer {
    pub(crate) fn new(queue: Queue) -> Self {
        Self { queue }
    }

    /// A layer queueing finished spans on `tx` (for tests of what is
    /// exported).
    pub fn to_channel(tx: mpsc::Sender<SpanRecord>) -> Self {
        Self::new(Queue::new(tx))
    }
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let own_parent = fields.traceparent.as_deref().and_then(TraceParent::parse);
        if attrs.metadata().target() != TARGET {
            if let Some(tp) = own_parent {
                span.extensions_mut().insert(Remote(tp));
            }
            return;
        }
        // The nearest ancestor that is exported or carries a caller's
        // context decides the trace.
        let mut inherited = own_parent.map(|tp| (tp.trace, Some(tp.parent)));
        if inherited.is_none() {
            for ancestor in span.scope().skip(1) {
                let ext = ancestor.extensions();
                if let Some(open) = ext.get::<Open>() {
                    inherited = Some((open.record.trace, Some(open.record.span)));
                    break;
                }
                if let Some(Remote(tp)) = ext.get::<Remote>() {
                    inherited = Some((tp.trace, Some(tp.parent)));
                    break;
                }
            }
        }
        let (trace, parent) = inherited.unwrap_or_else(|| (TraceId::random(), None));
        let now = SystemTime::now();
        let record = SpanRecord {
            trace,
            span: SpanId::random(),
            parent,
            name: attrs.metadata().name().to_owned(),
            start: now,
            end: now,
            attributes: fields.attributes,
            status: fields.error.map_or(Status::Unset, Status::Error),
        };
        span.extensions_mut().insert(Open { record });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        let Some(open) = ext.get_mut::<Open>() else {
            return;
        };
        let mut fields = Fields {
            attributes: std::mem::take(&mut open.record.attributes),
            ..Fields::default()
        };
        values.record(&mut fields);
        open.record.attributes = fields.attributes;
        if let Some(message) = fields.error {
            open.record.status = Status::Error(message);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(Open { mut record }) = span.extensions_mut().remove::<Open>() else {
            return;
        };
        record.end = SystemTime::now();
        self.queue.push(record);
    }
}

#[cfg(test)]
mod tests {
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn collect(f: impl FnOnce()) -> Vec<SpanRecord> {
        let (tx, mut rx) = mpsc::channel(64);
        let subscriber = tracing_subscriber::registry().with(OtlpLayer::to_channel(tx));
        tracing::subscriber::with_default(subscriber, f);
        let mut out = Vec::new();
        while let Ok(r) = rx.try_recv() {
            out.push(r);
        }
        out
    }

    #[test]
    fn operation_spans_nest_and_carry_their_fields() {
        let spans = collect(|| {
            let outer = tracing::info_span!(target: TARGET, "sandbox.fork", sandbox.id = "sbx1", team.id = "t1", error = tracing::field::Empty);
            let _o = outer.enter();
            {
                let noise = tracing::info_span!("not.exported", x = 1);
                let _n = noise.enter();
                let inner = tracing::info_span!(target: TARGET, "sandbox.create", count = 3u64);
                let _i = inner.enter();
            }
            outer.record("error", "the sandbox is not running");
        });
        assert_eq!(spans.len(), 2, "{spans:?}");
        let (inner, outer) = (&spans[0], &spans[1]);
        assert_eq!(inner.name, "sandbox.create");
        assert_eq!(inner.trace, outer.trace);
        assert_eq!(inner.parent, Some(outer.span));
        assert_eq!(outer.parent, None);
        assert!(
            outer
                .attributes
                .contains(&("sandbox.id".into(), Attribute::Str("sbx1".into())))
        );
        assert_eq!(inner.attributes, vec![("count".into(), Attribute::Int(3))]);
        assert_eq!(
            outer.status,
            Status::Error("the sandbox is not running".into())
        );
        assert_eq!(inner.status, Status::Unset);
        assert!(outer.end >= inner.end);
    }

    #[test]
    fn a_callers_traceparent_is_joined() {
        let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let spans = collect(|| {
            let request = tracing::info_span!(target: crate::CONTEXT_TARGET, "http.request", traceparent = header);
            let _r = request.enter();
            let op = tracing::info_span!(target: TARGET, "sandbox.pause");
            let _o = op.enter();
        });
        assert_eq!(spans.len(), 1);
        assert_eq!(
            spans[0].trace.to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(spans[0].parent.unwrap().to_string(), "b7ad6b7169203331");
        // A malformed context starts a trace of its own.
        let spans = collect(|| {
            let request = tracing::info_span!(target: crate::CONTEXT_TARGET, "http.request", traceparent = "garbage");
            let _r = request.enter();
            let op = tracing::info_span!(target: TARGET, "sandbox.pause");
            let _o = op.enter();
        });
        assert_eq!(spans[0].parent, None);
    }

    #[tokio::test]
    async fn a_span_held_by_a_future_ends_when_the_future_does() {
        let (tx, mut rx) = mpsc::channel(8);
        let subscriber = tracing_subscriber::registry().with(OtlpLayer::to_channel(tx));
        let _guard = tracing::subscriber::set_default(subscriber);
        let span = tracing::info_span!(target: TARGET, "sandbox.resume");
        async { tokio::task::yield_now().await }
            .instrument(span)
            .await;
        assert_eq!(rx.try_recv().unwrap().name, "sandbox.resume");
    }
}
