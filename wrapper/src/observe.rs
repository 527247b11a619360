//! The observability options: `--metrics-url URL-PATH` (the whole server's
//! metrics, Prometheus text format or OpenMetrics: `WSGIMetricsEndpoint`),
//! `--status-url URL-PATH` (the HTML status page and its JSON at
//! `URL-PATH.json`: `WSGIStatusPage`) and `--metrics-allow CIDR`
//! (repeatable; the clients both answer, `WSGIMetricsAllow`; default
//! 127.0.0.1/32 and ::1, others get 403). rwsgi's own (mod_wsgi-express has
//! none of them); docs/metrics.md and docs/status.md.

use anyhow::{bail, Result};
use clap::Args;
use rwsgi_core::observe::cidr::Cidr;
use serde::Serialize;

/// The options (field comments are the `--help` texts).
#[derive(Debug, Clone, Default, Args)]
pub struct ObserveArgs {
    /// Serve the whole server's metrics (Prometheus text format 0.0.4, or OpenMetrics when asked for) at this URL path, e.g. /metrics (WSGIMetricsEndpoint) [default: off].
    #[arg(long, value_name = "URL-PATH")]
    pub metrics_url: Option<String>,

    /// Serve the HTML status page at this URL path, its JSON at URL-PATH.json, e.g. /rwsgi-status (WSGIStatusPage) [default: off].
    #[arg(long, value_name = "URL-PATH")]
    pub status_url: Option<String>,

    /// A client address or CIDR network allowed to read --metrics-url and --status-url (repeatable; WSGIMetricsAllow) [default: 127.0.0.1/32 and ::1].
    #[arg(long = "metrics-allow", value_name = "CIDR")]
    pub metrics_allow: Vec<String>,
}

/// The options, checked, as httpd.conf writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ObserveSettings {
    /// `WSGIMetricsEndpoint`.
    pub metrics_url: Option<String>,
    /// `WSGIStatusPage`.
    pub status_url: Option<String>,
    /// `WSGIMetricsAllow` (normalised `addr/prefix`; empty: the module's default).
    pub allow: Vec<String>,
}

fn url_path(option: &str, v: &str) -> Result<String> {
    if !v.starts_with('/')
        || v.len() < 2
        || v.chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '\'' || c == '"' || c.is_control())
    {
        bail!("{option} {v:?} is not a URL path: give one such as /metrics (starting with '/', without query, spaces or quotes)");
    }
    Ok(v.to_string())
}

/// Checks the options. Errors (naming the option and value): a URL path
/// that does not start with `/` or has spaces, quotes or a query; both URLs
/// the same (or the metrics URL the status JSON's); an allow entry that is
/// not an address or CIDR network; `--metrics-allow` without a URL.
pub fn build(a: &ObserveArgs) -> Result<ObserveSettings> {
    let metrics_url = a
        .metrics_url
        .as_deref()
        .map(|v| url_path("--metrics-url", v))
        .transpose()?;
    let status_url = a
        .status_url
        .as_deref()
        .map(|v| url_path("--status-url", v))
        .transpose()?;
    if let (Some(m), Some(s)) = (&metrics_url, &status_url) {
        if m == s || *m == format!("{s}.json") {
            bail!("--metrics-url {m:?} and --status-url {s:?} (its JSON at {s}.json) must be different URLs");
        }
    }
    let mut allow = Vec::new();
    for v in &a.metrics_allow {
        let c = Cidr::parse(v).map_err(|e| anyhow::anyhow!("--metrics-allow: {e}"))?;
        allow.push(c.to_string());
    }
    if !allow.is_empty() && metrics_url.is_none() && status_url.is_none() {
        bail!(
            "--metrics-allow is given without --metrics-url or --status-url: nothing would use it"
        );
    }
    Ok(ObserveSettings {
        metrics_url,
        status_url,
        allow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(m: Option<&str>, s: Option<&str>, allow: &[&str]) -> ObserveArgs {
        ObserveArgs {
            metrics_url: m.map(str::to_string),
            status_url: s.map(str::to_string),
            metrics_allow: allow.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn defaults_are_off() {
        assert_eq!(
            build(&args(None, None, &[])).unwrap(),
            ObserveSettings::default()
        );
    }

    #[test]
    fn checked_values() {
        let s = build(&args(
            Some("/metrics"),
            Some("/rwsgi-status"),
            &["10.0.0.0/8", "::1"],
        ))
        .unwrap();
        assert_eq!(s.metrics_url.as_deref(), Some("/metrics"));
        assert_eq!(
            s.allow,
            vec!["10.0.0.0/8".to_string(), "::1/128".to_string()]
        );
        assert!(build(&args(Some("metrics"), None, &[]))
            .unwrap_err()
            .to_string()
            .contains("--metrics-url"));
        assert!(build(&args(Some("/a b"), None, &[])).is_err());
        assert!(build(&args(Some("/s.json"), Some("/s"), &[])).is_err());
        assert!(build(&args(Some("/m"), None, &["10.0.0.0/40"]))
            .unwrap_err()
            .to_string()
            .contains("--metrics-allow"));
        assert!(build(&args(None, None, &["127.0.0.1"])).is_err());
    }
}
