//! Text assembled at compile time from constants, so that the reference
//! can state a default or a limit without writing its value a second time:
//! `const_str!("at most ", MAX_FILE_PATH_LEN, " characters")` is a
//! `&'static str` usable in other constants.

/// One piece of a compile-time text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Piece {
    Text(&'static str),
    Number(u64),
}

/// Turns a constant into a [`Piece`]. Each type has its own inherent
/// `piece`, because trait methods cannot be called in constants.
pub(crate) struct Wrap<T>(pub(crate) T);

impl Wrap<&'static str> {
    pub(crate) const fn piece(self) -> Piece {
        Piece::Text(self.0)
    }
}

impl Wrap<u8> {
    pub(crate) const fn piece(self) -> Piece {
        Piece::Number(self.0 as u64)
    }
}

impl Wrap<u16> {
    pub(crate) const fn piece(self) -> Piece {
        Piece::Number(self.0 as u64)
    }
}

impl Wrap<u32> {
    pub(crate) const fn piece(self) -> Piece {
        Piece::Number(self.0 as u64)
    }
}

impl Wrap<u64> {
    pub(crate) const fn piece(self) -> Piece {
        Piece::Number(self.0)
    }
}

impl Wrap<usize> {
    pub(crate) const fn piece(self) -> Piece {
        Piece::Number(self.0 as u64)
    }
}

/// `on` or `off`, as a boolean is written in the configuration.
pub(crate) const fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

/// A small count in words, as the prose of the reference writes it.
pub(crate) const fn in_words(n: usize) -> &'static str {
    match n {
        1 => "one",
        2 => "two",
        3 => "three",
        4 => "four",
        5 => "five",
        6 => "six",
        7 => "seven",
        8 => "eight",
        _ => panic!("in_words: write larger counts in digits"),
    }
}

const fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Bytes of the text made of `pieces`.
pub(crate) const fn length(pieces: &[Piece]) -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < pieces.len() {
        total += match pieces[i] {
            Piece::Text(text) => text.len(),
            Piece::Number(n) => decimal_len(n),
        };
        i += 1;
    }
    total
}

/// The text made of `pieces`; `N` is their [`length`].
pub(crate) const fn render<const N: usize>(pieces: &[Piece]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < pieces.len() {
        match pieces[i] {
            Piece::Text(text) => {
                let bytes = text.as_bytes();
                let mut j = 0;
                while j < bytes.len() {
                    out[at] = bytes[j];
                    at += 1;
                    j += 1;
                }
            }
            Piece::Number(mut n) => {
                let len = decimal_len(n);
                let mut digit = len;
                while digit > 0 {
                    digit -= 1;
                    out[at + digit] = b'0' + (n % 10) as u8;
                    n /= 10;
                }
                at += len;
            }
        }
        i += 1;
    }
    assert!(at == N, "render: N is not the length of the pieces");
    out
}

/// A `&'static str` made of string and integer constants, evaluated at
/// compile time.
macro_rules! const_str {
    ($($piece:expr),+ $(,)?) => {{
        const PIECES: &[$crate::const_text::Piece] =
            &[$($crate::const_text::Wrap($piece).piece()),+];
        const BYTES: [u8; $crate::const_text::length(PIECES)] =
            $crate::const_text::render(PIECES);
        match ::core::str::from_utf8(&BYTES) {
            Ok(text) => text,
            Err(_) => panic!("const_str!: not UTF-8"),
        }
    }};
}
pub(crate) use const_str;

#[cfg(test)]
mod tests {
    const LIMIT: u32 = 262_144;
    const PATH: &str = "/var/lock/x";
    const TEXT: &str = const_str!("up to ", LIMIT, " in ", PATH, ", ", 0u8, ".");

    #[test]
    fn numbers_and_texts_are_joined() {
        assert_eq!(TEXT, "up to 262144 in /var/lock/x, 0.");
        assert_eq!(const_str!(u32::MAX), "4294967295");
        assert_eq!(const_str!(usize::MAX), usize::MAX.to_string());
        assert_eq!(const_str!("…", 7u16), "…7");
    }

    #[test]
    fn words() {
        assert_eq!(super::in_words(4), "four");
        assert_eq!(super::on_off(true), "on");
    }
}
