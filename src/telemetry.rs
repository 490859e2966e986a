//! Logging through `tracing`: JSON lines by default, text for a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

mod target;
pub use target::masked_target;

const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the global subscriber, writing to `writer`, which is stdout: text
/// is coloured only when stdout is a terminal and `NO_COLOR` is not set.
/// `RUST_LOG` overrides the default levels.
pub fn init<W>(format: LogFormat, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let colour = colour(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    install(format, filter, colour, writer);
}

/// As `init`, for a writer that is not a terminal (tests): never coloured.
pub fn init_with_filter<W>(format: LogFormat, filter: EnvFilter, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    install(format, filter, false, writer);
}

/// Colour codes are noise in a file, a pipe or a log collector; `NO_COLOR`
/// (no-color.org) turns them off anywhere, unless it is empty.
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

fn install<W>(format: LogFormat, filter: EnvFilter, colour: bool, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(colour)
        .with_target(true);
    // A second init (tests, or a library user that set its own) keeps the first.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// One log line per request, with the request id, route, status and latency:
/// `INFO`, or `ERROR` for a 5xx, which an operator should look at. A 4xx is
/// the caller's business (a wrong key, a wrong code): no `WARN` for it.
pub struct RequestLog;

struct Started(std::time::Instant);

impl tracing_actix_web::RootSpanBuilder for RequestLog {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        request
            .extensions_mut()
            .insert(Started(std::time::Instant::now()));
        let target = masked_target(request.uri().path_and_query().map_or("", |p| p.as_str()));
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let method = request.method().as_str().to_owned();
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let connection = request.connection_info().clone();
        // tracing-actix-web's `root_span!` with one change: `http.target` is
        // the path with phone numbers masked (`DELETE …/test-numbers/{phone}`).
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.flavor = ?request.version(),
            http.scheme = %connection.scheme(),
            http.host = %connection.host(),
            http.client_ip = %connection.realip_remote_addr().unwrap_or(""),
            http.user_agent = %request.headers().get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or(""),
            http.target = %target,
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
            client = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        use actix_web::HttpMessage;
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span.clone(), outcome);
        let (status, elapsed) = match outcome {
            Ok(response) => (
                response.status().as_u16(),
                response
                    .request()
                    .extensions()
                    .get::<Started>()
                    .map(|s| s.0.elapsed()),
            ),
            Err(e) => (e.as_response_error().status_code().as_u16(), None),
        };
        let latency_ms = elapsed.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        span.in_scope(|| {
            if status >= 500 {
                tracing::error!(status, latency_ms, "request finished");
            } else {
                tracing::info!(status, latency_ms, "request finished");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(super::colour(true, None));
        assert!(super::colour(true, Some(OsStr::new(""))));
        assert!(!super::colour(true, Some(OsStr::new("1"))));
        assert!(!super::colour(false, None));
    }
}
