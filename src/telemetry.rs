//! Logs: JSON in Lambda (CloudWatch parses it), readable text locally.

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
    } else {
        // Colours only for a person at a terminal: escapes cost each request's
        // span formatting and clutter a log file.
        builder
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
