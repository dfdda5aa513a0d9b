//! Captures the tracing events of an in-process run, so a test can assert which named events
//! were logged, with which fields, and that nothing was logged at warning level or above.
//!
//! The capture is the thread's default subscriber: `#[tokio::test]` runs the test, the fake API
//! and every task they spawn on the test's one thread, so every event of the run is seen.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex},
};

use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
    span,
};
use tracing_subscriber::{Layer, layer::Context, prelude::*, registry::LookupSpan};

/// One event as logged: its level, its `message` (the event name) and every field, its own and
/// those of the spans it was logged in (as text).
#[derive(Clone, Debug)]
pub struct Captured {
    pub level: Level,
    pub target: String,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl Captured {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Clone, Default)]
pub struct LogCapture {
    events: Arc<Mutex<Vec<Captured>>>,
}

/// Keeps the capture installed for the calling thread until dropped.
pub struct CaptureGuard {
    _default: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    /// Installs a capture of every event at debug level and above, for this thread.
    pub fn start() -> (LogCapture, CaptureGuard) {
        let capture = LogCapture::default();
        let subscriber = tracing_subscriber::registry().with(
            CaptureLayer {
                events: capture.events.clone(),
            }
            .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
        );
        let guard = tracing::subscriber::set_default(subscriber);
        (capture, CaptureGuard { _default: guard })
    }

    pub fn events(&self) -> Vec<Captured> {
        self.events.lock().expect("capture lock").clone()
    }

    /// leadsync's own events named `message`.
    pub fn named(&self, message: &str) -> Vec<Captured> {
        self.events()
            .into_iter()
            .filter(|event| event.message == message)
            .collect()
    }

    pub fn count(&self, message: &str) -> usize {
        self.named(message).len()
    }

    pub fn clear(&self) {
        self.events.lock().expect("capture lock").clear();
    }

    /// Fails the test if leadsync logged anything at WARN or ERROR: a healthy run is quiet.
    pub fn assert_quiet(&self, context: &str) {
        let loud: Vec<String> = self
            .events()
            .into_iter()
            .filter(|event| event.level <= Level::WARN && event.target.starts_with("leadsync"))
            .map(|event| format!("{} {} {:?}", event.level, event.message, event.fields))
            .collect();
        assert!(
            loud.is_empty(),
            "{context}: a healthy run logged warnings or errors:\n{}",
            loud.join("\n")
        );
    }
}

struct CaptureLayer {
    events: Arc<Mutex<Vec<Captured>>>,
}

/// A span's fields, kept in its extensions.
struct SpanFields(BTreeMap<String, String>);

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = FieldText::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.fields));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut fields = FieldText::default();
            values.record(&mut fields);
            let mut extensions = span.extensions_mut();
            if let Some(SpanFields(known)) = extensions.get_mut::<SpanFields>() {
                known.extend(fields.fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut own = FieldText::default();
        event.record(&mut own);
        let mut fields = BTreeMap::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(known)) = span.extensions().get::<SpanFields>() {
                    fields.extend(known.clone());
                }
            }
        }
        let message = own.fields.remove("message").unwrap_or_default();
        fields.extend(own.fields);
        self.events.lock().expect("capture lock").push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            message,
            fields,
        });
    }
}

#[derive(Default)]
struct FieldText {
    fields: BTreeMap<String, String>,
}

impl Visit for FieldText {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields
            .insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.fields
            .insert(field.name().to_owned(), format!("{value:?}"));
    }
}
