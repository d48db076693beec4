use thiserror::Error;

/// Why the exporter cannot be set up.
#[derive(Debug, Error)]
pub enum OtlpError {
    #[error(
        "the OTLP endpoint {0:?} is not an http:// URL (e.g. http://127.0.0.1:4318); OTLP over https is not supported: run a collector next to the daemon"
    )]
    Endpoint(String),
    #[error("the OTLP header {0:?} is not NAME=VALUE with a valid header name and value")]
    Header(String),
    #[error("cannot build the OTLP client: {0}")]
    Client(#[source] reqwest::Error),
}
