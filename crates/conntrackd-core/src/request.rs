//! The control-socket request (control-and-cli.md §3): one native-endian
//! 32-bit code. Parsed strictly: exactly four bytes, and a code from the
//! 1.4.7 table (anything else is counted as "local unknown request").

/// The request codes 1.4.7 defines (control-and-cli.md §2).
pub const KNOWN_CODES: &[i32] = &[
    0, 1, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37,
    38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
];

/// `conntrackd --synced` (our extension, docs/readiness.md): the reply is
/// `synced` or why not.
pub const SYNCED: i32 = 256;

/// Request codes of this implementation beyond 1.4.7's table.
pub const EXTENSION_CODES: &[i32] = &[SYNCED];

/// Added to a known code to ask for the reply as JSON (our extension;
/// 1.4.7 counts such a request as unknown and does not answer it).
pub const JSON_FLAG: i32 = 0x1_0000;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request of {0} bytes, not 4")]
    Length(usize),
    #[error("unknown request code {0}")]
    Unknown(i32),
}

/// Reads a request from exactly the bytes the client sent.
pub fn parse_request(bytes: &[u8]) -> Result<i32, RequestError> {
    let raw: [u8; 4] = bytes
        .try_into()
        .map_err(|_| RequestError::Length(bytes.len()))?;
    let code = i32::from_ne_bytes(raw);
    let known = |c: i32| KNOWN_CODES.contains(&c) || EXTENSION_CODES.contains(&c);
    if known(code) || known(code ^ JSON_FLAG) {
        Ok(code)
    } else {
        Err(RequestError::Unknown(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_four_byte_known_codes_pass() {
        assert_eq!(parse_request(&21i32.to_ne_bytes()), Ok(21));
        assert_eq!(
            parse_request(&99i32.to_ne_bytes()),
            Err(RequestError::Unknown(99))
        );
        assert_eq!(parse_request(&[1, 2, 3]), Err(RequestError::Length(3)));
        assert_eq!(parse_request(&[0; 5]), Err(RequestError::Length(5)));
        for code in KNOWN_CODES {
            assert_eq!(parse_request(&code.to_ne_bytes()), Ok(*code));
            let json = code | JSON_FLAG;
            assert_eq!(parse_request(&json.to_ne_bytes()), Ok(json));
        }
        assert_eq!(parse_request(&SYNCED.to_ne_bytes()), Ok(SYNCED));
        let unknown = 99 | JSON_FLAG;
        assert_eq!(
            parse_request(&unknown.to_ne_bytes()),
            Err(RequestError::Unknown(unknown))
        );
    }
}
