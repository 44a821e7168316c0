//! Logs: JSON in Lambda (CloudWatch parses it), readable text locally.

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::EnvFilter;

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .try_init()
    } else if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        builder.compact().try_init()
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
        builder.compact().with_ansi(false).fmt_fields(fields).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
