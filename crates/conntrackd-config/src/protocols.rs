//! Protocol name resolution like `getprotobyname()`.

use std::sync::OnceLock;

/// Built-in table used when `/etc/protocols` is absent.
const FALLBACK: &[(&str, u8)] = &[
    ("ip", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ipencap", 4),
    ("tcp", 6),
    ("egp", 8),
    ("udp", 17),
    ("ipv6", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ospf", 89),
    ("pim", 103),
    ("vrrp", 112),
    ("l2tp", 115),
    ("sctp", 132),
    ("dccp", 33),
    ("udplite", 136),
    ("mpls-in-ip", 137),
];

fn table() -> &'static Vec<(String, u8)> {
    static TABLE: OnceLock<Vec<(String, u8)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut entries: Vec<(String, u8)> = match std::fs::read_to_string("/etc/protocols") {
            Ok(text) => parse_protocols(&text),
            Err(_) => Vec::new(),
        };
        if entries.is_empty() {
            entries = FALLBACK
                .iter()
                .map(|(n, p)| ((*n).to_owned(), *p))
                .collect();
        }
        entries
    })
}

/// Parses `/etc/protocols` lines `name number [aliases…] [# comment]`.
pub(crate) fn parse_protocols(text: &str) -> Vec<(String, u8)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let (Some(name), Some(number)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<u8>() else {
            continue;
        };
        out.push((name.to_owned(), number));
        out.extend(fields.map(|alias| (alias.to_owned(), number)));
    }
    out
}

/// Protocol number for `name` (case-insensitive, names and aliases).
pub fn protocol_number(name: &str) -> Option<u8> {
    table()
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, p)| *p)
        .or_else(|| {
            FALLBACK
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, p)| *p)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_aliases() {
        assert_eq!(protocol_number("tcp"), Some(6));
        assert_eq!(protocol_number("ICMP"), Some(1));
        assert_eq!(protocol_number("ipv6-icmp"), Some(58));
        assert_eq!(protocol_number("sctp"), Some(132));
        assert_eq!(protocol_number("nosuchproto"), None);
        let parsed = parse_protocols("tcp 6 TCP # x\n# c\nudp\t17 UDP\nbad x\n");
        assert_eq!(
            parsed,
            vec![
                ("tcp".into(), 6),
                ("TCP".into(), 6),
                ("udp".into(), 17),
                ("UDP".into(), 17)
            ]
        );
    }
}
