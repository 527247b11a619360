//! Validation of what a WSGI application passes to `start_response`
//! (PEP 3333 §The start_response() Callable, §Other HTTP Features), with the
//! token and field-value grammar of RFC 9110 §5.
//!
//! Values arrive as Rust `&str` (decoded from Python `str`); PEP 3333 requires
//! them to be latin-1 "native strings", so every character must be at most
//! U+00FF. The functions return the HTTP status code, or which rule was broken.

use thiserror::Error;

/// Why a status line was refused. The `Display` text names the value and the
/// rule, for the error log and the exception raised in the application.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatusError {
    /// The status is not `NNN Reason-Phrase`.
    #[error(
        "status {0:?} is not of the form 'NNN Reason' (three digits, one space, a reason phrase)"
    )]
    Malformed(String),
    /// The code is outside 200..=599 (1xx cannot be a final WSGI response).
    #[error("status {0:?} has code {1}: a WSGI response status must be between 200 and 599")]
    CodeOutOfRange(String, u16),
    /// A character above U+00FF or a control character.
    #[error("status {0:?} contains {1:?}: status must be latin-1 text without control characters")]
    BadCharacter(String, char),
}

/// Why a response header was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// Empty name, or a character that is not an RFC 9110 token character.
    #[error(
        "header name {0:?} is not a valid HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)"
    )]
    BadName(String),
    /// CR or LF in the value: refused to prevent header injection.
    #[error("value {1:?} of header {0:?} contains CR or LF (header injection refused)")]
    NewlineInValue(String, String),
    /// A control character other than horizontal tab, or a character > U+00FF.
    #[error("value {1:?} of header {0:?} contains {2:?}: header values must be latin-1 text without control characters")]
    BadValueCharacter(String, String, char),
    /// A hop-by-hop header (PEP 3333 §Other HTTP Features).
    #[error(
        "header {0:?} is a hop-by-hop header, which WSGI applications must not set (PEP 3333)"
    )]
    HopByHop(String),
    /// Content-Length that is not a decimal number of bytes.
    #[error("Content-Length value {0:?} is not a non-negative decimal integer")]
    BadContentLength(String),
    /// Content-Length above what Apache can represent (`apr_off_t`, a
    /// signed 64-bit count of bytes).
    #[error(
        "Content-Length value {0:?} is larger than {MAX_CONTENT_LENGTH} bytes, the most Apache can send (apr_off_t)"
    )]
    ContentLengthTooLarge(String),
}

/// Largest `Content-Length` a response may declare, in bytes: Apache keeps
/// lengths in `apr_off_t` (signed 64-bit), so larger values would go out
/// negative.
pub const MAX_CONTENT_LENGTH: u64 = i64::MAX as u64;

/// What a valid header means to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// `Content-Type`: becomes Apache's `r->content_type`.
    ContentType,
    /// `Content-Length` in bytes (at most [`MAX_CONTENT_LENGTH`]): the server
    /// sends at most this many bytes.
    ContentLength(u64),
    /// Any other header, passed to Apache's `headers_out` as is.
    Other,
}

/// Hop-by-hop headers of RFC 9110 §7.6.1 that PEP 3333 forbids applications to send.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// RFC 9110 `tchar` membership for each byte.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| TCHAR[b as usize])
}

/// The first character of `text` that is above U+00FF or a control
/// character other than horizontal tab.
fn bad_text_char(text: &str) -> Option<char> {
    if text
        .bytes()
        .all(|b| b >= 0x20 && b != 0x7f && b < 0x80 || b == b'\t')
    {
        return None;
    }
    text.chars()
        .find(|&c| (c as u32) > 0xFF || (c.is_control() && c != '\t'))
}

/// Checks a WSGI status string such as `"200 OK"`.
///
/// Input: the status as passed to `start_response`. Output: the status code
/// (200..=599). Errors: [`StatusError`] naming the value and the rule.
pub fn validate_status(status: &str) -> Result<u16, StatusError> {
    let bytes = status.as_bytes();
    if bytes.len() < 5
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || bytes[3] != b' '
        || bytes[4] == b' '
        || status.ends_with([' ', '\t'])
    {
        return Err(StatusError::Malformed(status.to_string()));
    }
    if let Some(c) = bad_text_char(status) {
        return Err(StatusError::BadCharacter(status.to_string(), c));
    }
    let code: u16 = status[..3].parse().expect("three ASCII digits");
    if !(200..=599).contains(&code) {
        return Err(StatusError::CodeOutOfRange(status.to_string(), code));
    }
    Ok(code)
}

/// Checks one response header `(name, value)`.
///
/// Output: the [`HeaderKind`], with the parsed length for `Content-Length`.
/// Errors: [`HeaderError`] naming the header, the value and the rule.
pub fn validate_header(name: &str, value: &str) -> Result<HeaderKind, HeaderError> {
    if !is_token(name) {
        return Err(HeaderError::BadName(name.to_string()));
    }
    if value.contains(['\r', '\n']) {
        return Err(HeaderError::NewlineInValue(
            name.to_string(),
            value.to_string(),
        ));
    }
    if let Some(c) = bad_text_char(value) {
        return Err(HeaderError::BadValueCharacter(
            name.to_string(),
            value.to_string(),
            c,
        ));
    }
    if (2..=19).contains(&name.len()) && HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        return Err(HeaderError::HopByHop(name.to_string()));
    }
    if name.eq_ignore_ascii_case("content-type") {
        return Ok(HeaderKind::ContentType);
    }
    if name.eq_ignore_ascii_case("content-length") {
        let v = value.trim_matches([' ', '\t']);
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HeaderError::BadContentLength(value.to_string()));
        }
        // All digits: the only parse failure left is overflow.
        return match v.trim_start_matches('0').parse::<u64>() {
            Ok(n) if n <= MAX_CONTENT_LENGTH => Ok(HeaderKind::ContentLength(n)),
            Err(_) if v.bytes().all(|b| b == b'0') => Ok(HeaderKind::ContentLength(0)),
            _ => Err(HeaderError::ContentLengthTooLarge(value.to_string())),
        };
    }
    Ok(HeaderKind::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_statuses() {
        assert_eq!(validate_status("200 OK"), Ok(200));
        assert_eq!(validate_status("404 Not Found"), Ok(404));
        assert_eq!(validate_status("299 Custom thing"), Ok(299));
        assert_eq!(validate_status("500 Erreur \u{e9}"), Ok(500));
    }

    #[test]
    fn malformed_statuses() {
        for s in [
            "200", "200 ", "abc OK", "20 OK", "200OK", " 200 OK", "200  OK", "2000 OK", "200 OK ",
        ] {
            assert!(
                matches!(validate_status(s), Err(StatusError::Malformed(_))),
                "{s:?} accepted"
            );
        }
    }

    #[test]
    fn status_range_and_characters() {
        assert_eq!(
            validate_status("100 Continue"),
            Err(StatusError::CodeOutOfRange("100 Continue".into(), 100))
        );
        assert_eq!(
            validate_status("600 Odd"),
            Err(StatusError::CodeOutOfRange("600 Odd".into(), 600))
        );
        assert!(matches!(
            validate_status("200 O\nK"),
            Err(StatusError::BadCharacter(_, '\n'))
        ));
        assert!(matches!(
            validate_status("200 \u{20ac}"),
            Err(StatusError::BadCharacter(_, '\u{20ac}'))
        ));
    }

    #[test]
    fn status_error_names_value_and_rule() {
        let msg = validate_status("abc").unwrap_err().to_string();
        assert!(
            msg.contains("\"abc\"") && msg.contains("NNN Reason"),
            "{msg}"
        );
    }

    #[test]
    fn good_headers() {
        assert_eq!(
            validate_header("Content-Type", "text/plain"),
            Ok(HeaderKind::ContentType)
        );
        assert_eq!(
            validate_header("content-length", "12"),
            Ok(HeaderKind::ContentLength(12))
        );
        assert_eq!(
            validate_header("X-Thing", "a\tb \u{ff}"),
            Ok(HeaderKind::Other)
        );
        assert_eq!(validate_header("Set-Cookie", ""), Ok(HeaderKind::Other));
    }

    #[test]
    fn header_injection_refused() {
        assert!(matches!(
            validate_header("X-A", "1\r\nX-Injected: yes"),
            Err(HeaderError::NewlineInValue(..))
        ));
        assert!(matches!(
            validate_header("X-A", "1\nX"),
            Err(HeaderError::NewlineInValue(..))
        ));
        assert!(matches!(
            validate_header("X-A\r\nB", "1"),
            Err(HeaderError::BadName(_))
        ));
    }

    #[test]
    fn bad_headers() {
        assert!(matches!(
            validate_header("", "1"),
            Err(HeaderError::BadName(_))
        ));
        assert!(matches!(
            validate_header("X A", "1"),
            Err(HeaderError::BadName(_))
        ));
        assert!(matches!(
            validate_header("X:A", "1"),
            Err(HeaderError::BadName(_))
        ));
        assert!(matches!(
            validate_header("X-A", "a\u{0}b"),
            Err(HeaderError::BadValueCharacter(_, _, '\u{0}'))
        ));
        assert!(matches!(
            validate_header("X-A", "\u{20ac}"),
            Err(HeaderError::BadValueCharacter(..))
        ));
        for h in [
            "Connection",
            "keep-alive",
            "Transfer-Encoding",
            "Upgrade",
            "TE",
            "Trailer",
            "Proxy-Authenticate",
        ] {
            assert_eq!(
                validate_header(h, "x"),
                Err(HeaderError::HopByHop(h.into()))
            );
        }
        for v in ["", "-1", "1.5", "12a", "+5", " "] {
            assert!(matches!(
                validate_header("Content-Length", v),
                Err(HeaderError::BadContentLength(_))
            ));
        }
    }

    #[test]
    fn content_length_fits_apr_off_t() {
        assert_eq!(
            validate_header("Content-Length", "9223372036854775807"),
            Ok(HeaderKind::ContentLength(i64::MAX as u64))
        );
        assert_eq!(
            validate_header("Content-Length", "000"),
            Ok(HeaderKind::ContentLength(0))
        );
        assert_eq!(
            validate_header("Content-Length", "007"),
            Ok(HeaderKind::ContentLength(7))
        );
        for v in [
            "9223372036854775808",
            "18446744073709551615",
            "99999999999999999999999",
        ] {
            let e = validate_header("Content-Length", v).unwrap_err();
            assert_eq!(e, HeaderError::ContentLengthTooLarge(v.into()));
            assert!(e.to_string().contains("9223372036854775807 bytes"), "{e}");
        }
    }
}
