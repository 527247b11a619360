//! Pure logic of rwsgi, the mod_wsgi-compatible Apache module: everything that
//! can be decided without Apache or a Python interpreter, so `cargo test` can
//! check it directly.
//!
//! - [`daemon_config`]: `WSGIDaemonProcess name [options]` parsed into a
//!   typed, validated daemon process group configuration.
//! - [`directives`]: parsing of mod_wsgi configuration directive arguments.
//! - [`environ`]: the CGI part of the WSGI environ (PEP 3333 §environ), built
//!   from a neutral description of a request.
//! - [`handler`]: `WSGIHandlerScript`'s arguments.
//! - [`metrics`]: the duration histogram of the metrics API.
//! - [`observe`]: the server-wide metrics endpoint and status page: label
//!   sets, buckets, Prometheus/OpenMetrics encoding, the status JSON.
//! - [`options`]: arguments of the dispatch and interpreter directives
//!   (`WSGIDispatchScript`, `WSGIPythonHashSeed`, ...).
//! - [`proxy`]: trusted proxy headers (`WSGITrustedProxyHeaders`,
//!   `WSGITrustedProxies`): what they rewrite, what they remove.
//! - [`telemetry`]: the telemetry directives' arguments and datagrams.
//! - [`validate`]: the rules `start_response` enforces on status lines and
//!   response headers (PEP 3333 §start_response, RFC 9110).
//! - [`wire`]: the daemon-mode wire protocol (frames between an Apache child
//!   and a daemon process).

pub mod daemon_config;
pub mod directives;
pub mod environ;
pub mod handler;
pub mod interp_options;
pub mod metrics;
pub mod observe;
pub mod options;
pub mod proxy;
pub mod telemetry;
pub mod validate;
pub mod wire;
