//! What authentication refused and why: one description per reason, from
//! which `-s network`, `--json` and the metrics are rendered.

/// Why an envelope (or a datagram) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Not an envelope of ours: a plain 1.4.7 datagram, garbage, a torn
    /// length, an unknown format.
    NotEnvelope,
    /// Sealed with a key we do not hold.
    UnknownKey,
    /// Plain (HMAC) while `Encrypt on` requires encryption.
    Unencrypted,
    /// The tag does not match: forged or damaged.
    BadTag,
    /// Our own session came back to us.
    Reflected,
    /// A counter this session already used, or one too old for the window.
    Replayed,
    /// Held for a handshake that then showed it was sealed too long before.
    Stale,
    /// From a session no handshake verified, and dropped: the hold was full,
    /// or no handshake came.
    Unverified,
}

impl Refusal {
    pub const ALL: [Refusal; 8] = [
        Refusal::NotEnvelope,
        Refusal::UnknownKey,
        Refusal::Unencrypted,
        Refusal::BadTag,
        Refusal::Reflected,
        Refusal::Replayed,
        Refusal::Stale,
        Refusal::Unverified,
    ];

    /// The name in `--json` and in the metrics' `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::NotEnvelope => "not_envelope",
            Refusal::UnknownKey => "unknown_key",
            Refusal::Unencrypted => "unencrypted",
            Refusal::BadTag => "bad_tag",
            Refusal::Reflected => "reflected",
            Refusal::Replayed => "replayed",
            Refusal::Stale => "stale",
            Refusal::Unverified => "unverified",
        }
    }

    /// The line label in `-s network`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotEnvelope => "not an envelope",
            Refusal::UnknownKey => "unknown key",
            Refusal::Unencrypted => "not encrypted",
            Refusal::BadTag => "bad tag",
            Refusal::Reflected => "our own, reflected",
            Refusal::Replayed => "replayed",
            Refusal::Stale => "stale",
            Refusal::Unverified => "unverified",
        }
    }

    /// One sentence for docs and metric help.
    pub fn help(self) -> &'static str {
        match self {
            Refusal::NotEnvelope => {
                "not an authenticated envelope (a plain 1.4.7 datagram, garbage, a torn length)"
            }
            Refusal::UnknownKey => "sealed with a key this node does not hold",
            Refusal::Unencrypted => "not encrypted while Encrypt on requires encryption",
            Refusal::BadTag => "the authentication tag does not match: forged or damaged",
            Refusal::Reflected => "this node's own envelope sent back to it",
            Refusal::Replayed => "a counter the sending session already used, or one too old",
            Refusal::Stale => {
                "held until a handshake verified its session, which showed it was sealed too long before"
            }
            Refusal::Unverified => {
                "from a session no handshake verified, dropped when the hold was full"
            }
        }
    }

    fn index(self) -> usize {
        match self {
            Refusal::NotEnvelope => 0,
            Refusal::UnknownKey => 1,
            Refusal::Unencrypted => 2,
            Refusal::BadTag => 3,
            Refusal::Reflected => 4,
            Refusal::Replayed => 5,
            Refusal::Stale => 6,
            Refusal::Unverified => 7,
        }
    }
}

/// Counters of the authentication layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthCounters {
    refused: [u64; Refusal::ALL.len()],
    /// Envelopes of sessions not yet verified, held for a handshake.
    pub held: u64,
    /// Sessions verified by a handshake (peers that started or restarted,
    /// and every peer after we restarted).
    pub verified: u64,
    /// Handshake envelopes sent.
    pub handshakes_sent: u64,
}

impl AuthCounters {
    pub fn refused(&self, why: Refusal) -> u64 {
        self.refused.get(why.index()).copied().unwrap_or(0)
    }

    /// Every refusal: `Auth failures` in `-s network`.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    pub(super) fn refuse(&mut self, why: Refusal, n: u64) {
        if let Some(c) = self.refused.get_mut(why.index()) {
            *c += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot_and_name() {
        let mut c = AuthCounters::default();
        for (i, why) in Refusal::ALL.into_iter().enumerate() {
            c.refuse(why, i as u64 + 1);
        }
        for (i, why) in Refusal::ALL.into_iter().enumerate() {
            assert_eq!(c.refused(why), i as u64 + 1, "{why:?}");
        }
        let names: std::collections::HashSet<_> = Refusal::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), Refusal::ALL.len());
        assert_eq!(c.refused_total(), (1..=8).sum::<u64>());
    }
}
