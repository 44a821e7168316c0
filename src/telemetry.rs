//! Logs: JSON in Lambda (CloudWatch parses it), readable text locally.
//! Every line carries the release that wrote it (`version`, `commit`).

use tracing::{Event, Subscriber};
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The release: the package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit it was built from (build.rs; "unknown" outside git).
pub const COMMIT: &str = env!("ACCOUNT_CONNECT_COMMIT");
/// What `--version` prints after the name.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ACCOUNT_CONNECT_COMMIT"),
    ")"
);

tokio::task_local! {
    /// The id of the request being served, set by the API's request
    /// context for the request's future: each line logged while it runs
    /// carries it. A task-local rather than a span: a span a request (made,
    /// its fields formatted, entered and left on each poll, closed) was
    /// about 5 % of the local server's CPU for a small request (perf).
    pub static REQUEST_ID: http::HeaderValue;
}

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .map_event_format(|f| Released { inner: f, json: true })
            .try_init()
    } else if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        builder
            .compact()
            .map_event_format(|f| Released { inner: f, json: false })
            .try_init()
    } else {
        // No colours in a log file, and plain `name=value` fields: the
        // default formatter styles every field name even with colours off,
        // about 5 % of a request's instructions when the span had three.
        let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
            if field.name() == "message" {
                write!(w, "{value:?}")
            } else {
                write!(w, "{field}={value:?}")
            }
        })
        .delimited(" ");
        builder
            .compact()
            .with_ansi(false)
            .fmt_fields(fields)
            .map_event_format(|f| Released { inner: f, json: false })
            .try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// An event format with the release added to each line: the first fields
/// of a JSON object, or `version=… commit=…` at the end of a text line.
pub struct Released<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for Released<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let request = REQUEST_ID
            .try_with(|id| id.to_str().map(str::to_owned).ok())
            .ok()
            .flatten();
        if !self.json && writer.has_ansi_escapes() {
            // A terminal: the line keeps its colours, the release leads it.
            write!(writer, "[{VERSION} {COMMIT}] ")?;
            if let Some(id) = &request {
                write!(writer, "[{id}] ")?;
            }
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&with_release(&line, self.json, request.as_deref()))
    }
}

/// `line` (one formatted event, ending in a newline) with the release in
/// it, and the id of the request it was logged for, if any.
fn with_release(line: &str, json: bool, request: Option<&str>) -> String {
    if json {
        if let Some(rest) = line.strip_prefix('{') {
            // Neither holds a character JSON escapes (a version, hex digits or "unknown").
            let sep = if rest.starts_with('}') { "" } else { "," };
            let request = request
                .map(|id| format!(",\"request_id\":{}", serde_json::Value::from(id)))
                .unwrap_or_default();
            return format!("{{\"version\":\"{VERSION}\",\"commit\":\"{COMMIT}\"{request}{sep}{rest}");
        }
        return line.to_owned();
    }
    let body = line.strip_suffix('\n').unwrap_or(line);
    match request {
        Some(id) => format!("{body} request_id={id} version={VERSION} commit={COMMIT}\n"),
        None => format!("{body} version={VERSION} commit={COMMIT}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The JSON lines `log` writes through the Lambda functions' format.
    fn json_lines(log: impl FnOnce()) -> (String, Vec<serde_json::Value>) {
        let lines = Lines::default();
        let out = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .with_writer(move || out.clone())
            .map_event_format(|f| Released { inner: f, json: true })
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (text, lines)
    }

    #[test]
    fn every_json_line_carries_the_release_inside_and_outside_spans() {
        let (text, lines) = json_lines(|| {
            tracing::info!(n = 1, "plain");
            let span = tracing::info_span!("request", id = "r1");
            let _in = span.enter();
            tracing::warn!("inside");
        });
        assert_eq!(lines.len(), 2, "{text}");
        for l in &lines {
            assert_eq!(l["version"], VERSION, "{l}");
            assert_eq!(l["commit"], COMMIT, "{l}");
        }
        assert_eq!(lines[0]["fields"]["message"], "plain");
        assert_eq!(lines[1]["span"]["id"], "r1");
    }

    #[test]
    fn lines_logged_for_a_request_carry_its_id() {
        let (text, lines) = json_lines(|| {
            REQUEST_ID.sync_scope(http::HeaderValue::from_static("req-1"), || {
                tracing::info!("inside");
            });
            tracing::info!("outside");
        });
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["request_id"], "req-1", "{text}");
        assert_eq!(lines[0]["version"], VERSION, "{text}");
        assert!(lines[1].get("request_id").is_none(), "{text}");
        assert_eq!(
            with_release("WARN slow\n", false, Some("req-2")),
            format!("WARN slow request_id=req-2 version={VERSION} commit={COMMIT}\n")
        );
    }

    #[test]
    fn a_text_line_ends_with_the_release() {
        let line = with_release("INFO served status=200\n", false, None);
        assert_eq!(
            line,
            format!("INFO served status=200 version={VERSION} commit={COMMIT}\n")
        );
        assert_eq!(
            with_release("{}\n", true, None),
            format!("{{\"version\":\"{VERSION}\",\"commit\":\"{COMMIT}\"}}\n")
        );
    }

    #[test]
    fn the_commit_is_known_in_a_git_checkout() {
        // The tests run from a checkout; "unknown" is for builds outside git.
        assert!(
            COMMIT.len() >= 7 && COMMIT.chars().all(|c| c.is_ascii_hexdigit()),
            "{COMMIT}"
        );
        assert!(LONG_VERSION.starts_with(VERSION) && LONG_VERSION.contains(COMMIT));
    }
}
