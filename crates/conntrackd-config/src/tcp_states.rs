//! The TCP state names of `Filter { State … for TCP }` (and of the legacy
//! `Replicate`): keywords of the scanner, parsed into state numbers and
//! named again in `--check`'s summary.

use conntrack_model::consts::tcp_state;

/// Each name as written with its state; `CLOSED` is another spelling of
/// `CLOSE` (the first spelling of a state is the one shown).
pub(crate) const TCP_STATES: &[(&str, u8)] = &[
    ("SYN_SENT", tcp_state::SYN_SENT),
    ("SYN_RECV", tcp_state::SYN_RECV),
    ("ESTABLISHED", tcp_state::ESTABLISHED),
    ("FIN_WAIT", tcp_state::FIN_WAIT),
    ("CLOSE_WAIT", tcp_state::CLOSE_WAIT),
    ("LAST_ACK", tcp_state::LAST_ACK),
    ("TIME_WAIT", tcp_state::TIME_WAIT),
    ("CLOSE", tcp_state::CLOSE),
    ("CLOSED", tcp_state::CLOSE),
    ("LISTEN", tcp_state::LISTEN),
];

/// The state written `name`.
pub(crate) fn state_number(name: &str) -> Option<u8> {
    TCP_STATES
        .iter()
        .find(|(spelling, _)| *spelling == name)
        .map(|(_, state)| *state)
}

/// How `state` is written (`?` for a state no name stands for).
pub(crate) fn state_name(state: u8) -> &'static str {
    TCP_STATES
        .iter()
        .find(|(_, number)| *number == state)
        .map_or("?", |(spelling, _)| spelling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(state_number("CLOSED"), state_number("CLOSE"));
        assert_eq!(state_name(tcp_state::CLOSE), "CLOSE");
        assert_eq!(state_name(tcp_state::LISTEN), "LISTEN");
        assert_eq!(state_number("SYN_SENT2"), None);
    }
}
