//! Tokeniser following the flex scanner's longest-match rules (docs/config.md §2).

use crate::diag::Span;
use crate::reference;
use crate::tcp_states::TCP_STATES;

/// Keywords of conntrackd.conf 1.4.7 (case-sensitive): the names of the
/// keys of its grammar (from the reference, see [`Key::in_147_grammar`]),
/// the TCP state names and the other words of its grammar. Everything else,
/// our own keys among them, is lexed as a plain word.
///
/// [`Key::in_147_grammar`]: crate::reference::Key::in_147_grammar
pub(crate) const KEYWORDS: &[&str] = &keywords::<{ keyword_count() }>();

/// Words of the 1.4.7 grammar that are neither keys nor TCP states.
const GRAMMAR_WORDS: &[&str] = &[
    "for",
    "Accept",
    "Ignore",
    "From",
    "Userspace",
    "Kernelspace",
    "Default",
];

const fn keyword_count() -> usize {
    reference::count_in_147_grammar() + TCP_STATES.len() + GRAMMAR_WORDS.len()
}

/// [`KEYWORDS`], assembled at compile time; `N` is [`keyword_count`]`()`.
const fn keywords<const N: usize>() -> [&'static str; N] {
    const KEYS: usize = reference::count_in_147_grammar();
    let keys = reference::names_in_147_grammar::<KEYS>();
    let mut words = [""; N];
    let mut at = 0;
    let mut i = 0;
    while i < keys.len() {
        words[at] = keys[i];
        at += 1;
        i += 1;
    }
    let mut i = 0;
    while i < TCP_STATES.len() {
        words[at] = TCP_STATES[i].0;
        at += 1;
        i += 1;
    }
    let mut i = 0;
    while i < GRAMMAR_WORDS.len() {
        words[at] = GRAMMAR_WORDS[i];
        at += 1;
        i += 1;
    }
    words
}

/// Synchronisation mode names as lexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModeName {
    Alarm,
    Persistent,
    Ftfw,
    Nack,
    Notrack,
}

/// Token classes, in flex rule priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Keyword,
    Bool(bool),
    Number,
    SignedNumber,
    Ipv4,
    Ipv6,
    Path,
    Mode(ModeName),
    Str,
    OpenBrace,
    CloseBrace,
    /// Any other single character.
    Other,
}

/// One token with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub(crate) kind: TokenKind,
    pub(crate) text: &'a str,
    pub(crate) span: Span,
    /// 1-based line (counting `\n` only, like the C scanner).
    pub(crate) line: usize,
    /// 1-based column in characters.
    pub(crate) column: usize,
}

impl Token<'_> {
    /// True if this is the keyword `kw`.
    pub(crate) fn is_kw(&self, kw: &str) -> bool {
        self.kind == TokenKind::Keyword && self.text == kw
    }
}

/// Splits `source` into tokens, dropping whitespace and comments.
pub(crate) fn tokenize(source: &str) -> Vec<Token<'_>> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    let mut line_start = 0;
    while pos < bytes.len() {
        let b = bytes[pos];
        match b {
            b'\n' => {
                pos += 1;
                line += 1;
                line_start = pos;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                pos += 1;
                continue;
            }
            b'#' => {
                pos += source[pos..].find('\n').unwrap_or(source.len() - pos);
                continue;
            }
            _ => {}
        }
        let rest = &source[pos..];
        let (kind, len) = classify(rest);
        let column = source[line_start..pos].chars().count() + 1;
        tokens.push(Token {
            kind,
            text: &rest[..len],
            span: pos..pos + len,
            line,
            column,
        });
        pos += len;
    }
    tokens
}

/// Picks the longest match at the start of `rest` (ties: earliest rule).
fn classify(rest: &str) -> (TokenKind, usize) {
    let word = match_word(rest);
    let mut best = (TokenKind::Other, 0usize);
    let mut consider = |kind: TokenKind, len: usize| {
        if len > best.1 {
            best = (kind, len);
        }
    };
    if word > 0 && KEYWORDS.contains(&&rest[..word]) {
        consider(TokenKind::Keyword, word);
    }
    if word > 0 {
        match rest[..word].to_ascii_lowercase().as_str() {
            "on" | "yes" => consider(TokenKind::Bool(true), word),
            "off" | "no" => consider(TokenKind::Bool(false), word),
            _ => {}
        }
    }
    consider(TokenKind::Number, digits(rest.as_bytes()));
    let b = rest.as_bytes();
    if matches!(b.first(), Some(b'-' | b'+')) {
        let d = digits(&b[1..]);
        if d > 0 {
            consider(TokenKind::SignedNumber, d + 1);
        }
    }
    consider(TokenKind::Ipv4, match_ipv4(b));
    consider(TokenKind::Ipv6, match_ipv6(b));
    if b.first() == Some(&b'/') {
        let len = rest.find([' ', '\n', '"']).unwrap_or(rest.len());
        consider(TokenKind::Path, len);
    }
    if word > 0 {
        let w = &rest[..word];
        let mode = match w.to_ascii_lowercase().as_str() {
            "alarm" => Some(ModeName::Alarm),
            "ftfw" => Some(ModeName::Ftfw),
            "nack" => Some(ModeName::Nack),
            "notrack" => Some(ModeName::Notrack),
            // The flex pattern's last letter only matches an upper-case `T`.
            "persistent" if w.ends_with('T') => Some(ModeName::Persistent),
            _ => None,
        };
        if let Some(mode) = mode {
            consider(TokenKind::Mode(mode), word);
        }
        consider(TokenKind::Str, word);
    }
    if best.1 == 0 {
        let len = rest.chars().next().map_or(1, char::len_utf8);
        let kind = match b.first() {
            Some(b'{') => TokenKind::OpenBrace,
            Some(b'}') => TokenKind::CloseBrace,
            _ => TokenKind::Other,
        };
        best = (kind, len);
    }
    best
}

/// STRING: a letter followed by letters, digits, `.`, `-`, `_`.
fn match_word(rest: &str) -> usize {
    let b = rest.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_alphabetic) {
        return 0;
    }
    1 + b[1..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        .count()
}

fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn cidr_suffix(b: &[u8]) -> usize {
    if b.first() == Some(&b'/') {
        let d = digits(&b[1..]);
        if d > 0 {
            return d + 1;
        }
    }
    0
}

/// Four dot-separated decimal groups, optional `/prefix`.
fn match_ipv4(b: &[u8]) -> usize {
    let mut pos = 0;
    for group in 0..4 {
        if group > 0 {
            if b.get(pos) != Some(&b'.') {
                return 0;
            }
            pos += 1;
        }
        let d = digits(&b[pos..]);
        if d == 0 {
            return 0;
        }
        pos += d;
    }
    pos + cidr_suffix(&b[pos..])
}

/// Hex groups of 1–4 digits joined by `:` (at most one `::`), optional `/prefix`.
/// Also matches a bare 1–4 hex digit word, like the flex pattern.
fn match_ipv6(b: &[u8]) -> usize {
    let mut pos = 0;
    let mut end = 0;
    let mut groups = 0;
    let mut double_colon = false;
    if b.starts_with(b"::") {
        double_colon = true;
        pos = 2;
        end = 2;
    }
    loop {
        let h = b[pos..]
            .iter()
            .take(4)
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        if h == 0 {
            break;
        }
        pos += h;
        end = pos;
        groups += 1;
        if groups >= 8 {
            break;
        }
        if b[pos..].starts_with(b"::") && !double_colon {
            double_colon = true;
            pos += 2;
            end = pos;
        } else if b.get(pos) == Some(&b':') {
            pos += 1;
        } else {
            break;
        }
    }
    if end == 0 {
        return 0;
    }
    end + cidr_suffix(&b[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(TokenKind, &str)> {
        tokenize(s).into_iter().map(|t| (t.kind, t.text)).collect()
    }

    /// The keyword list of 1.4.7's scanner (docs/config.md §2.1). A key added to
    /// the reference must not change it: a new keyword would stop a file
    /// from using that word as a name (an interface, a helper, a policy).
    const KEYWORDS_OF_1_4_7: &str = "UNIX IPv4_address IPv6_address \
        IPv4_Destination_Address IPv6_Destination_Address IPv4_interface \
        IPv6_interface Interface Multicast UDP TCP HashSize RefreshTime CacheTimeout \
        CommitTimeout HashLimit Path Backlog Group Port LogFile Syslog LockFile General \
        Sync Stats SocketBufferSize SocketBufferSizeMaxGrown SocketBufferSizeMaxGrowth \
        NetlinkBufferSize NetlinkBufferSizeMaxGrowth Mode ResendQueueSize Checksum \
        ACKWindowSize for SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK \
        TIME_WAIT CLOSE CLOSED LISTEN SndSocketBuffer RcvSocketBuffer Filter Protocol \
        Address State Accept Ignore PurgeTimeout From Userspace Kernelspace \
        EventIterationLimit Default PollSecs NetlinkOverrunResync Nice Scheduler Type \
        Priority NetlinkEventsReliable DisableInternalCache DisableExternalCache Options \
        TCPWindowTracking ExpectationSync ErrorQueueLength Helper QueueNum QueueLen \
        Policy ExpectMax ExpectTimeout Systemd StartupResync Setup";

    #[test]
    fn the_keywords_are_those_of_1_4_7() {
        let mut expected: Vec<&str> = KEYWORDS_OF_1_4_7.split_whitespace().collect();
        let mut derived = KEYWORDS.to_vec();
        expected.sort_unstable();
        derived.sort_unstable();
        assert_eq!(derived, expected);
    }

    #[test]
    fn hex_words_are_ipv6_tokens() {
        assert_eq!(kinds("dead"), vec![(TokenKind::Ipv6, "dead")]);
        assert_eq!(kinds("deadbeef"), vec![(TokenKind::Str, "deadbeef")]);
        assert_eq!(kinds("0eth")[0], (TokenKind::Ipv6, "0e"));
        assert_eq!(kinds("fe80::1/64"), vec![(TokenKind::Ipv6, "fe80::1/64")]);
        assert_eq!(kinds("::1"), vec![(TokenKind::Ipv6, "::1")]);
        assert_eq!(kinds("8192"), vec![(TokenKind::Number, "8192")]);
    }

    #[test]
    fn longest_match_and_priorities() {
        assert_eq!(kinds("UDP{")[0], (TokenKind::Keyword, "UDP"));
        assert_eq!(kinds("UDPx"), vec![(TokenKind::Str, "UDPx")]);
        assert_eq!(kinds("YeS"), vec![(TokenKind::Bool(true), "YeS")]);
        assert_eq!(kinds("general"), vec![(TokenKind::Str, "general")]);
        assert_eq!(kinds("persistent"), vec![(TokenKind::Str, "persistent")]);
        assert_eq!(
            kinds("PersistenT"),
            vec![(TokenKind::Mode(ModeName::Persistent), "PersistenT")]
        );
        assert_eq!(kinds("10.0.0.0/8"), vec![(TokenKind::Ipv4, "10.0.0.0/8")]);
        assert_eq!(kinds("999.1.1.1"), vec![(TokenKind::Ipv4, "999.1.1.1")]);
        assert_eq!(kinds("-5"), vec![(TokenKind::SignedNumber, "-5")]);
    }

    #[test]
    fn paths_end_only_at_space_newline_quote() {
        assert_eq!(kinds("/x.sock}"), vec![(TokenKind::Path, "/x.sock}")]);
        assert_eq!(kinds("/a#c\tb \n"), vec![(TokenKind::Path, "/a#c\tb")]);
        assert_eq!(kinds("/a\r\n"), vec![(TokenKind::Path, "/a\r")]);
        assert_eq!(kinds("/a\"")[0], (TokenKind::Path, "/a"));
    }

    #[test]
    fn comments_and_positions() {
        let t = tokenize("General { # c\n  HashSize 5 }");
        assert_eq!(t.len(), 5);
        assert_eq!((t[2].line, t[2].column), (2, 3));
        assert_eq!(t[2].text, "HashSize");
    }
}
