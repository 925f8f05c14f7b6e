//! Small byte-string tools for the text protocols.

/// Position of `needle` in `hay`, ASCII case ignored.
pub(crate) fn find_ignore_case(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether `hay` starts with `prefix`, ASCII case ignored.
pub(crate) fn starts_with_ignore_case(hay: &[u8], prefix: &[u8]) -> bool {
    hay.get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// A decimal number at the start of `s` (at most `max`): its value and
/// the digits it took. None without a digit or above `max`.
pub(crate) fn decimal(s: &[u8], max: u32) -> Option<(u32, usize)> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 10 {
        return None;
    }
    let mut value: u64 = 0;
    for b in &s[..digits] {
        value = value * 10 + u64::from(b - b'0');
    }
    u32::try_from(value)
        .ok()
        .filter(|v| *v <= max)
        .map(|v| (v, digits))
}

/// A port number (1..=65535) at the start of `s`.
pub(crate) fn port(s: &[u8]) -> Option<(u16, usize)> {
    let (value, used) = decimal(s, 65535)?;
    let port = u16::try_from(value).ok().filter(|p| *p != 0)?;
    Some((port, used))
}

/// The lines of `payload`, each without its `\r\n` or `\n`; a last line
/// without a terminator is included.
pub(crate) fn lines(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    payload
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_ports_and_searches() {
        assert_eq!(decimal(b"123,", 255), Some((123, 3)));
        assert_eq!(decimal(b"256", 255), None);
        assert_eq!(decimal(b"x", 255), None);
        assert_eq!(decimal(b"99999999999999", u32::MAX), None);
        assert_eq!(port(b"0"), None);
        assert_eq!(port(b"65535)"), Some((65535, 5)));
        assert_eq!(find_ignore_case(b"a (host=1", b"HOST="), Some(3));
        assert!(starts_with_ignore_case(b"port 1", b"PORT"));
        assert_eq!(
            lines(b"a\r\nb\nc").collect::<Vec<_>>(),
            vec![&b"a"[..], b"b", b"c"]
        );
    }
}
