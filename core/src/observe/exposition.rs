//! Metrics exposition: the Prometheus text format 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>) and
//! OpenMetrics 1.0 (<https://prometheus.io/docs/specs/om/open_metrics_spec/>),
//! chosen from the scraper's `Accept` header ([`Format::negotiate`]).
//!
//! The differences handled here: OpenMetrics names a counter family
//! without its `_total` suffix (the samples keep it), escapes `"` in HELP
//! text too, and ends with `# EOF`. Histogram bucket bounds (`le`) are
//! written in Rust's shortest round-trip form with a decimal point
//! (`0.005`, `1.0`, `+Inf`) in both formats.

use std::fmt::Write;

/// The two exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The format a scraper asks for: OpenMetrics when its `Accept` header
    /// lists `application/openmetrics-text` (with a q-value above 0),
    /// else the Prometheus text format (also without the header).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            if !media.eq_ignore_ascii_case("application/openmetrics-text") {
                continue;
            }
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if !refused {
                return Format::OpenMetrics;
            }
        }
        Format::Prometheus
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets when the process that keeps it restarts).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in cumulative buckets, with `_sum` and `_count`.
    Histogram,
}

/// Label pairs of one sample: `(name, value)`; names must be valid label
/// names (`[a-zA-Z_][a-zA-Z0-9_]*`), values any text (escaped here).
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// Writes one exposition document: call [`Encoder::family`] once per
/// family, then its samples, and [`Encoder::finish`] at the end.
pub struct Encoder {
    format: Format,
    out: String,
}

/// A value as the formats write it: integers without a fraction, `NaN`,
/// `+Inf`, `-Inf`.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

/// A bucket bound (`le`): `0.005`, `1.0`, `+Inf`.
fn bound(v: f64) -> String {
    if v.is_infinite() {
        "+Inf".into()
    } else {
        format!("{v:?}")
    }
}

fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl Encoder {
    /// An empty document in `format`.
    pub fn new(format: Format) -> Encoder {
        Encoder {
            format,
            out: String::with_capacity(8192),
        }
    }

    /// Starts family `name` (for a counter, its name with `_total`, as the
    /// Prometheus format names it) of type `kind`, described by `help`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let name = match (self.format, kind) {
            (Format::OpenMetrics, Kind::Counter) => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let mut h = String::with_capacity(help.len());
        for c in help.chars() {
            match c {
                '\\' => h.push_str("\\\\"),
                '\n' => h.push_str("\\n"),
                '"' if self.format == Format::OpenMetrics => h.push_str("\\\""),
                c => h.push(c),
            }
        }
        let t = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(self.out, "# HELP {name} {h}");
        let _ = writeln!(self.out, "# TYPE {name} {t}");
    }

    fn line(&mut self, name: &str, labels: Labels<'_>, extra: Option<(&str, &str)>, value: &str) {
        self.out.push_str(name);
        if !labels.is_empty() || extra.is_some() {
            self.out.push('{');
            let mut first = true;
            for (k, v) in labels.iter().copied().chain(extra) {
                if !first {
                    self.out.push(',');
                }
                first = false;
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(v, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }

    /// One sample of the current family: `name` as written (a counter's
    /// with `_total`), its labels and value.
    pub fn sample(&mut self, name: &str, labels: Labels<'_>, value: f64) {
        self.line(name, labels, None, &number(value));
    }

    /// One histogram of the current family `name`: `counts` per bucket
    /// (not cumulative; one per bound of `bounds`, then `+Inf`), and the
    /// sum of the observations.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: Labels<'_>,
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        for (i, c) in counts.iter().enumerate() {
            cumulative += c;
            let le = bound(bounds.get(i).copied().unwrap_or(f64::INFINITY));
            self.line(&bucket, labels, Some(("le", &le)), &cumulative.to_string());
        }
        self.line(&format!("{name}_sum"), labels, None, &number(sum));
        self.line(
            &format!("{name}_count"),
            labels,
            None,
            &cumulative.to_string(),
        );
    }

    /// The document (OpenMetrics' ends with `# EOF`).
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; q=0, text/plain")),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some("Application/OpenMetrics-Text")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn prometheus_counter_and_gauge() {
        let mut e = Encoder::new(Format::Prometheus);
        e.family(
            "rwsgi_requests_total",
            Kind::Counter,
            "Requests \\ served.\nOK",
        );
        e.sample(
            "rwsgi_requests_total",
            &[("process_group", "a\"b\\c\nd"), ("method", "GET")],
            3.0,
        );
        e.family("rwsgi_threads", Kind::Gauge, "Threads.");
        e.sample("rwsgi_threads", &[], 1.5);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP rwsgi_requests_total Requests \\\\ served.\\nOK\n\
             # TYPE rwsgi_requests_total counter\n\
             rwsgi_requests_total{process_group=\"a\\\"b\\\\c\\nd\",method=\"GET\"} 3\n\
             # HELP rwsgi_threads Threads.\n\
             # TYPE rwsgi_threads gauge\n\
             rwsgi_threads 1.5\n"
        );
    }

    #[test]
    fn openmetrics_counter_family_and_eof() {
        let mut e = Encoder::new(Format::OpenMetrics);
        e.family("rwsgi_requests_total", Kind::Counter, "Say \"hi\".");
        e.sample("rwsgi_requests_total", &[("a", "b")], 7.0);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP rwsgi_requests Say \\\"hi\\\".\n\
             # TYPE rwsgi_requests counter\n\
             rwsgi_requests_total{a=\"b\"} 7\n\
             # EOF\n"
        );
    }

    #[test]
    fn histogram_is_cumulative() {
        let mut e = Encoder::new(Format::Prometheus);
        e.family("d_seconds", Kind::Histogram, "D.");
        e.histogram("d_seconds", &[("g", "x")], &[0.005, 1.0], &[2, 0, 1], 2.25);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP d_seconds D.\n\
             # TYPE d_seconds histogram\n\
             d_seconds_bucket{g=\"x\",le=\"0.005\"} 2\n\
             d_seconds_bucket{g=\"x\",le=\"1.0\"} 2\n\
             d_seconds_bucket{g=\"x\",le=\"+Inf\"} 3\n\
             d_seconds_sum{g=\"x\"} 2.25\n\
             d_seconds_count{g=\"x\"} 3\n"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(12345.0), "12345");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(bound(10.0), "10.0");
        assert_eq!(bound(0.0025), "0.0025");
    }
}
