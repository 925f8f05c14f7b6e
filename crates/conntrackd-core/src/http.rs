//! The request head of the metrics endpoint (docs/metrics.md): a small,
//! strict HTTP/1.x parser. Pure code, so that it can be fuzzed; the shell
//! reads the bytes (bounded in size and time) and answers.

/// The longest request head read.
pub const MAX_HEAD: usize = 8192;

/// What an HTTP request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Metrics { head: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// The head is complete: the blank line that ends it has arrived.
pub fn head_complete(received: &[u8]) -> bool {
    received.windows(4).any(|w| w == b"\r\n\r\n")
}

/// Parses a request head (up to the blank line): only the request line
/// matters, and it must be exactly `METHOD TARGET HTTP/1.x`.
pub fn parse_request(head: &[u8]) -> Asked {
    let Ok(text) = std::str::from_utf8(head) else {
        return Asked::BadRequest;
    };
    let Some(line) = text.split("\r\n").next() else {
        return Asked::BadRequest;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Asked::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Asked::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET", "/metrics") => Asked::Metrics { head: false },
        ("HEAD", "/metrics") => Asked::Metrics { head: true },
        (_, "/metrics") => Asked::MethodNotAllowed,
        _ => Asked::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_strictly() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Asked::Metrics { head: false }
        );
        assert_eq!(
            parse_request(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Asked::Metrics { head: true }
        );
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Asked::NotFound);
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Asked::MethodNotAllowed
        );
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics SPDY/3\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
            b"",
        ] {
            assert_eq!(parse_request(bad), Asked::BadRequest, "{bad:?}");
        }
    }

    #[test]
    fn the_head_ends_at_the_blank_line() {
        assert!(!head_complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"));
        assert!(head_complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
}
