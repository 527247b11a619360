//! mod_wsgi 6's telemetry: the arguments of `WSGITelemetryService`,
//! `WSGITelemetryOptions` and `WSGISlowRequests`, and the encoder of the
//! datagrams the reporter sends (mod_wsgi's wire format, version 1: a
//! 24-byte little-endian header, then type-length-value fields; see
//! docs/telemetry.md).

use crate::directives::DirectiveError;

fn err(directive: &'static str, message: impl Into<String>) -> DirectiveError {
    DirectiveError {
        directive,
        message: message.into(),
    }
}

/// `WSGITelemetryService unix:/path [interval=N]`: the socket path and the
/// interval in seconds (default 1, at least 0.5), as mod_wsgi.
pub fn parse_telemetry_service(
    target: &str,
    second: Option<&str>,
) -> Result<(String, f64), DirectiveError> {
    let d = "WSGITelemetryService";
    if target.is_empty() {
        return Err(err(d, "target required"));
    }
    let Some(path) = target.strip_prefix("unix:") else {
        return Err(err(
            d,
            format!("target must be 'unix:/path' (remote 'udp:host:port' targets are no longer supported), got {target:?}"),
        ));
    };
    if path.is_empty() {
        return Err(err(d, "target 'unix:' needs a socket path"));
    }
    // sun_path holds 108 bytes with the terminating NUL.
    if path.len() >= 108 {
        return Err(err(
            d,
            format!("socket path {path:?} is longer than 107 bytes"),
        ));
    }
    let mut interval = 1.0;
    if let Some(s) = second {
        let Some(v) = s.strip_prefix("interval=") else {
            return Err(err(
                d,
                format!("second argument must be 'interval=N', got {s:?}"),
            ));
        };
        interval = v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| err(d, format!("interval {v:?} is not a number of seconds")))?;
        if interval < 0.5 {
            return Err(err(
                d,
                format!("interval must be at least 0.5 seconds, got {v}"),
            ));
        }
    }
    Ok((path.to_string(), interval))
}

/// `WSGISlowRequests seconds`: the threshold in seconds (non-negative; 0
/// turns slow-request reporting off, as mod_wsgi).
pub fn parse_slow_requests(value: &str) -> Result<f64, DirectiveError> {
    let d = "WSGISlowRequests";
    if value.trim().is_empty() {
        return Err(err(d, "threshold (seconds) required"));
    }
    let v = value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| err(d, format!("threshold {value:?} is not a number of seconds")))?;
    if v < 0.0 {
        return Err(err(
            d,
            format!("threshold must be non-negative, got {value}"),
        ));
    }
    Ok(v)
}

/// `WSGITelemetryOptions` flag `CaptureUserAgent`.
pub const CAPTURE_USER_AGENT: u32 = 1;
/// Every `WSGITelemetryOptions` flag (`All`).
pub const ALL_FLAGS: u32 = CAPTURE_USER_AGENT;

/// Applies one `WSGITelemetryOptions` directive to `current` and returns
/// the new flags, with Apache `Options` rules as mod_wsgi: `+Flag`/`-Flag`
/// adjust, bare names (and `None`, `All`) set the flags absolutely; the two
/// forms may not be mixed in one directive.
pub fn apply_telemetry_options(current: u32, words: &[String]) -> Result<u32, DirectiveError> {
    let d = "WSGITelemetryOptions";
    if words.is_empty() {
        return Err(err(d, "at least one flag required"));
    }
    let flag = |name: &str| -> Result<u32, DirectiveError> {
        if name.eq_ignore_ascii_case("CaptureUserAgent") {
            Ok(CAPTURE_USER_AGENT)
        } else {
            Err(err(
                d,
                format!("unknown flag '{name}' (flags: CaptureUserAgent, or None / All)"),
            ))
        }
    };
    let (mut relative, mut absolute) = (false, false);
    let mut flags = current;
    let mut set = 0u32;
    for w in words {
        let (sign, name) = match w.as_bytes().first() {
            Some(b'+') => (Some(true), &w[1..]),
            Some(b'-') => (Some(false), &w[1..]),
            _ => (None, w.as_str()),
        };
        if sign.is_some() && name.is_empty() {
            return Err(err(d, "bare '+' / '-' is not a flag"));
        }
        for special in ["None", "All"] {
            if sign.is_some() && name.eq_ignore_ascii_case(special) {
                return Err(err(d, format!("'{special}' may not have a +/- prefix")));
            }
        }
        if sign.is_some() {
            relative = true;
        } else {
            absolute = true;
        }
        if relative && absolute {
            return Err(err(
                d,
                "cannot mix +/- form with absolute names in a single directive",
            ));
        }
        match sign {
            Some(true) => flags |= flag(name)?,
            Some(false) => flags &= !flag(name)?,
            None if name.eq_ignore_ascii_case("None") => set = 0,
            None if name.eq_ignore_ascii_case("All") => set = ALL_FLAGS,
            None => set |= flag(name)?,
        }
    }
    Ok(if absolute { set } else { flags })
}

// ---- the wire format ---------------------------------------------------------

/// Datagram kind: a periodic process sample.
pub const KIND_REQUEST: u8 = 2;
/// Datagram kind: one slow request (active or completed).
pub const KIND_SLOW_REQUEST: u8 = 4;

/// Field ids of mod_wsgi 6's wire format, the ones rwsgi sends (the table
/// of mod_wsgi's `wsgi_telemetry.h`, mirrored by mod_wsgi-telemetry's
/// `wire.py`). Times are f64 seconds; counts are integers.
pub mod field {
    #![allow(missing_docs)]
    pub const PYTHON_VERSION: u16 = 2;
    pub const HOSTNAME: u16 = 5;
    pub const PROCESS_GROUP: u16 = 6;
    pub const PROCESS_PARENT_PID: u16 = 7;
    pub const SAMPLE_PERIOD: u16 = 10;
    pub const TELEMETRY_INTERVAL: u16 = 11;
    pub const SLOW_REQUESTS_THRESHOLD: u16 = 12;
    pub const REQUEST_COUNT: u16 = 20;
    pub const REQUEST_THROUGHPUT: u16 = 21;
    pub const CAPACITY_UTILIZATION: u16 = 22;
    pub const CPU_USER_UTILIZATION: u16 = 30;
    pub const CPU_SYSTEM_UTILIZATION: u16 = 31;
    pub const CPU_UTILIZATION: u16 = 32;
    pub const MEMORY_RSS: u16 = 40;
    pub const MEMORY_MAX_RSS: u16 = 41;
    pub const REQUEST_THREADS_MAXIMUM: u16 = 50;
    pub const REQUEST_THREADS_STARTED: u16 = 51;
    pub const REQUEST_THREADS_ACTIVE: u16 = 52;
    pub const SERVER_TIME: u16 = 60;
    pub const QUEUE_TIME: u16 = 61;
    pub const DAEMON_TIME: u16 = 62;
    pub const APPLICATION_TIME: u16 = 63;
    pub const INPUT_BYTES_TOTAL: u16 = 100;
    pub const INPUT_READS_TOTAL: u16 = 101;
    pub const OUTPUT_BYTES_TOTAL: u16 = 102;
    pub const OUTPUT_WRITES_TOTAL: u16 = 103;
    /// i32 array: requests completed per worker thread in the interval.
    pub const THREADS_COMPLETED: u16 = 110;
    /// f64 arrays, seconds, per worker thread.
    pub const THREADS_BUSY_TIME: u16 = 111;
    pub const THREADS_CPU_TIME: u16 = 112;
    pub const THREADS_CURRENT_ELAPSED: u16 = 113;
    pub const THREADS_MAX_DURATION: u16 = 114;
    pub const SLOW_STATE: u16 = 200;
    /// f64 seconds since the epoch.
    pub const SLOW_START_STAMP: u16 = 201;
    /// f64 seconds.
    pub const SLOW_DURATION: u16 = 202;
    pub const SLOW_THREAD_ID: u16 = 203;
    pub const SLOW_INPUT_BYTES: u16 = 230;
    pub const SLOW_INPUT_READS: u16 = 231;
    pub const SLOW_OUTPUT_BYTES: u16 = 232;
    pub const SLOW_OUTPUT_WRITES: u16 = 233;
    /// f64 seconds.
    pub const SLOW_CPU_USER_TIME: u16 = 250;
    pub const SLOW_CPU_SYSTEM_TIME: u16 = 251;
}

const T_U64: u8 = 0x01;
const T_F64: u8 = 0x02;
const T_BYTES: u8 = 0x04;
const T_I32_ARRAY: u8 = 0x05;
const T_F64_ARRAY: u8 = 0x06;

/// Builds one datagram: [`Datagram::new`] writes the header, the `put_*`
/// methods append fields, [`Datagram::bytes`] is the result.
pub struct Datagram(Vec<u8>);

impl Datagram {
    /// The header: magic `WSGI`, version 1, `kind`, flags 0, `pid`, `seq`
    /// (per process, from 1), the stamp (`stamp_us`, microseconds since the
    /// epoch, sent as f64 seconds as mod_wsgi sends it).
    pub fn new(kind: u8, pid: u32, seq: u32, stamp_us: u64) -> Datagram {
        let mut b = Vec::with_capacity(1024);
        b.extend_from_slice(b"WSGI");
        b.push(1);
        b.push(kind);
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&pid.to_le_bytes());
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&(stamp_us as f64 / 1e6).to_bits().to_le_bytes());
        Datagram(b)
    }

    fn tag(&mut self, id: u16, t: u8) {
        self.0.extend_from_slice(&id.to_le_bytes());
        self.0.push(t);
    }

    /// An unsigned 64-bit field.
    pub fn put_u64(&mut self, id: u16, v: u64) {
        self.tag(id, T_U64);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A 64-bit float field (IEEE 754 bits, little-endian).
    pub fn put_f64(&mut self, id: u16, v: f64) {
        self.tag(id, T_F64);
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    /// A byte-string field (length-prefixed, at most 65535 bytes kept);
    /// skipped when empty, as mod_wsgi.
    pub fn put_bytes(&mut self, id: u16, v: &[u8]) {
        if v.is_empty() {
            return;
        }
        let v = &v[..v.len().min(u16::MAX as usize)];
        self.tag(id, T_BYTES);
        self.0.extend_from_slice(&(v.len() as u16).to_le_bytes());
        self.0.extend_from_slice(v);
    }

    /// An array of 64-bit floats (count-prefixed, at most 65535 kept).
    pub fn put_f64_array(&mut self, id: u16, values: &[f64]) {
        let values = &values[..values.len().min(u16::MAX as usize)];
        self.tag(id, T_F64_ARRAY);
        self.0
            .extend_from_slice(&(values.len() as u16).to_le_bytes());
        for v in values {
            self.0.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }

    /// An array of signed 32-bit integers (count-prefixed, values clamped).
    pub fn put_i32_array(&mut self, id: u16, values: &[i64]) {
        let values = &values[..values.len().min(u16::MAX as usize)];
        self.tag(id, T_I32_ARRAY);
        self.0
            .extend_from_slice(&(values.len() as u16).to_le_bytes());
        for v in values {
            let v = (*v).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// The encoded datagram.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn service_target_and_interval() {
        assert_eq!(
            parse_telemetry_service("unix:/tmp/t.sock", None).unwrap(),
            ("/tmp/t.sock".to_string(), 1.0)
        );
        assert_eq!(
            parse_telemetry_service("unix:/tmp/t.sock", Some("interval=2.5"))
                .unwrap()
                .1,
            2.5
        );
        for (t, s, needle) in [
            ("udp:h:1", None, "must be 'unix:/path'"),
            ("unix:/x", Some("interval=0.1"), "at least 0.5 seconds"),
            ("unix:/x", Some("every=1"), "must be 'interval=N'"),
            ("unix:/x", Some("interval=x"), "not a number"),
            ("", None, "target required"),
        ] {
            let e = parse_telemetry_service(t, s).unwrap_err().to_string();
            assert!(
                e.starts_with("WSGITelemetryService: ") && e.contains(needle),
                "{e}"
            );
        }
    }

    #[test]
    fn slow_requests_threshold() {
        assert_eq!(parse_slow_requests("2.5").unwrap(), 2.5);
        assert_eq!(parse_slow_requests("0").unwrap(), 0.0);
        assert!(parse_slow_requests("-1")
            .unwrap_err()
            .to_string()
            .contains("non-negative"));
        assert!(parse_slow_requests("soon")
            .unwrap_err()
            .to_string()
            .contains("not a number"));
    }

    #[test]
    fn options_forms() {
        assert_eq!(
            apply_telemetry_options(0, &words("+CaptureUserAgent")).unwrap(),
            1
        );
        assert_eq!(
            apply_telemetry_options(1, &words("-CaptureUserAgent")).unwrap(),
            0
        );
        assert_eq!(apply_telemetry_options(1, &words("None")).unwrap(), 0);
        assert_eq!(
            apply_telemetry_options(0, &words("All")).unwrap(),
            ALL_FLAGS
        );
        assert_eq!(
            apply_telemetry_options(0, &words("CaptureUserAgent")).unwrap(),
            1
        );
        for (w, needle) in [
            ("", "at least one flag"),
            ("+", "bare '+'"),
            ("+None", "'None' may not have"),
            ("-All", "'All' may not have"),
            ("+CaptureUserAgent None", "cannot mix"),
            ("Bogus", "unknown flag 'Bogus'"),
        ] {
            let e = apply_telemetry_options(0, &words(w))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{w}: {e}");
        }
    }

    #[test]
    fn datagram_layout() {
        // 1.5 s after the epoch, as mod_wsgi-telemetry's wire.py reads it:
        // header "<4sBBHIId", then id u16, type u8, value.
        let mut d = Datagram::new(KIND_REQUEST, 7, 3, 1_500_000);
        d.put_u64(field::REQUEST_COUNT, 5);
        d.put_bytes(field::HOSTNAME, b"h");
        d.put_bytes(field::PROCESS_GROUP, b"");
        d.put_i32_array(field::THREADS_COMPLETED, &[1, -1]);
        d.put_f64_array(field::THREADS_BUSY_TIME, &[0.25]);
        let b = d.bytes();
        assert_eq!(&b[..8], b"WSGI\x01\x02\x00\x00");
        assert_eq!(&b[8..12], &7u32.to_le_bytes());
        assert_eq!(&b[12..16], &3u32.to_le_bytes());
        assert_eq!(&b[16..24], &1.5f64.to_bits().to_le_bytes());
        assert_eq!(&b[24..27], &[20, 0, 1]);
        assert_eq!(&b[27..35], &5u64.to_le_bytes());
        assert_eq!(&b[35..41], &[5, 0, 4, 1, 0, b'h']);
        assert_eq!(&b[41..46], &[110, 0, 5, 2, 0]);
        assert_eq!(&b[54..59], &[111, 0, 6, 1, 0]);
        assert_eq!(&b[59..67], &0.25f64.to_bits().to_le_bytes());
        assert_eq!(b.len(), 67);
    }
}
