//! Netlink framing: messages of a received buffer, and request building.

use conntrack_model::{Conntrack, Expect};

use crate::DecodeError;
use crate::conntrack::{decode_conntrack, encode_conntrack};
use crate::expect::{decode_expect, encode_expect};
use crate::nla::{NlaWriter, align4};

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
pub const NFNL_SUBSYS_CTNETLINK_EXP: u16 = 2;
pub const IPCTNL_MSG_CT_NEW: u16 = 0;
pub const IPCTNL_MSG_CT_GET: u16 = 1;
pub const IPCTNL_MSG_CT_DELETE: u16 = 2;

/// Event groups in the legacy bitmask form used at bind time.
pub mod groups {
    pub const CT_NEW: u32 = 0x1;
    pub const CT_UPDATE: u32 = 0x2;
    pub const CT_DESTROY: u32 = 0x4;
    pub const EXP_NEW: u32 = 0x8;
    pub const EXP_UPDATE: u32 = 0x10;
    pub const EXP_DESTROY: u32 = 0x20;
    pub const CT_ALL: u32 = CT_NEW | CT_UPDATE | CT_DESTROY;
}

const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

/// The 16-byte netlink header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlHeader {
    pub len: u32,
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// Port id of the sender; for events, of the socket that caused them.
    pub pid: u32,
}

/// What a conntrack message says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtEvent {
    New,
    Update,
    Destroy,
    /// A reply to GET or a dump entry.
    Entry,
}

/// One decoded netlink message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Conntrack {
        header: NlHeader,
        event: CtEvent,
        family: u8,
        ct: Box<Conntrack>,
    },
    Expect {
        header: NlHeader,
        event: CtEvent,
        family: u8,
        exp: Box<Expect>,
    },
    /// `NLMSG_ERROR`; `errno == 0` is an ACK.
    Error {
        header: NlHeader,
        errno: i32,
    },
    Done {
        header: NlHeader,
    },
    Overrun {
        header: NlHeader,
    },
    /// Anything else (expectations, noop, other subsystems), kept as bytes.
    Other {
        header: NlHeader,
        payload: Vec<u8>,
    },
}

/// Iterates over the netlink messages of one received datagram.
pub fn messages(buf: &[u8]) -> MessageIter<'_> {
    MessageIter { buf }
}

#[derive(Debug)]
pub struct MessageIter<'a> {
    buf: &'a [u8],
}

impl Iterator for MessageIter<'_> {
    type Item = Result<Message, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.len() < NLMSG_HDRLEN {
            if self.buf.is_empty() {
                return None;
            }
            self.buf = &[];
            return Some(Err(DecodeError::Truncated));
        }
        let header = parse_header(self.buf);
        let len = header.len as usize;
        if len < NLMSG_HDRLEN || len > self.buf.len() {
            self.buf = &[];
            return Some(Err(DecodeError::Truncated));
        }
        let payload = &self.buf[NLMSG_HDRLEN..len];
        self.buf = &self.buf[align4(len).min(self.buf.len())..];
        Some(decode_one(header, payload))
    }
}

fn parse_header(buf: &[u8]) -> NlHeader {
    let u32_at = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    NlHeader {
        len: u32_at(0),
        kind: u16::from_ne_bytes([buf[4], buf[5]]),
        flags: u16::from_ne_bytes([buf[6], buf[7]]),
        seq: u32_at(8),
        pid: u32_at(12),
    }
}

fn decode_one(header: NlHeader, payload: &[u8]) -> Result<Message, DecodeError> {
    match header.kind {
        NLMSG_ERROR => {
            let bytes: [u8; 4] = payload
                .get(..4)
                .and_then(|s| s.try_into().ok())
                .ok_or(DecodeError::Truncated)?;
            // The kernel reports -errno.
            Ok(Message::Error {
                header,
                errno: i32::from_ne_bytes(bytes).wrapping_neg(),
            })
        }
        NLMSG_DONE => Ok(Message::Done { header }),
        NLMSG_OVERRUN => Ok(Message::Overrun { header }),
        kind if kind >> 8 == NFNL_SUBSYS_CTNETLINK || kind >> 8 == NFNL_SUBSYS_CTNETLINK_EXP => {
            let is_expect = kind >> 8 == NFNL_SUBSYS_CTNETLINK_EXP;
            let msg = kind & 0xff;
            // Expectation and conntrack message numbers agree for NEW/GET/DELETE.
            let event = match msg {
                IPCTNL_MSG_CT_NEW if header.flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => {
                    CtEvent::New
                }
                IPCTNL_MSG_CT_NEW if header.flags & NLM_F_MULTI != 0 => CtEvent::Entry,
                IPCTNL_MSG_CT_NEW => CtEvent::Update,
                IPCTNL_MSG_CT_DELETE => CtEvent::Destroy,
                _ => {
                    return Ok(Message::Other {
                        header,
                        payload: payload.to_vec(),
                    });
                }
            };
            let family = *payload.first().ok_or(DecodeError::Truncated)?;
            let attrs = payload.get(NFGENMSG_LEN..).ok_or(DecodeError::Truncated)?;
            if is_expect {
                return Ok(Message::Expect {
                    header,
                    event,
                    family,
                    exp: Box::new(decode_expect(attrs)?),
                });
            }
            Ok(Message::Conntrack {
                header,
                event,
                family,
                ct: Box::new(decode_conntrack(attrs)?),
            })
        }
        _ => Ok(Message::Other {
            header,
            payload: payload.to_vec(),
        }),
    }
}

/// Appends one netlink message (header, nfgenmsg, attributes) to `buf`.
/// Appends one nfnetlink message: the netlink header, the nfgenmsg
/// (`family`, version 0, `res_id`, which names the queue for NFQUEUE and
/// is 0 for ctnetlink), then the attributes `fill` writes.
pub fn push_nfnl_message(
    buf: &mut Vec<u8>,
    kind: u16,
    flags: u16,
    seq: u32,
    (family, res_id): (u8, u16),
    fill: impl FnOnce(&mut NlaWriter<'_>),
) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.push(family);
    buf.push(0); // NFNETLINK_V0
    buf.extend_from_slice(&res_id.to_be_bytes());
    fill(&mut NlaWriter::new(buf));
    let len = u32::try_from(buf.len() - start).unwrap_or(u32::MAX);
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// A ctnetlink message (`res_id` 0).
fn push_message(
    buf: &mut Vec<u8>,
    kind: u16,
    flags: u16,
    seq: u32,
    family: u8,
    fill: impl FnOnce(&mut NlaWriter<'_>),
) {
    push_nfnl_message(buf, kind, flags, seq, (family, 0), fill);
}

fn ct_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_CTNETLINK << 8) | msg
}

fn exp_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_CTNETLINK_EXP << 8) | msg
}

fn family_of_expect(exp: &Expect) -> u8 {
    exp.tuple.as_ref().map_or(0, |t| t.family())
}

fn family_of(ct: &Conntrack) -> u8 {
    ct.family().unwrap_or(0)
}

/// Builders of ctnetlink requests; each appends to `buf` so that many can
/// be batched into one `send`.
pub mod request {
    use super::*;

    /// Dump the whole conntrack table (`family` 0 = all).
    pub fn dump(buf: &mut Vec<u8>, seq: u32, family: u8) {
        push_message(
            buf,
            ct_type(IPCTNL_MSG_CT_GET),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family,
            |_| {},
        );
    }

    /// Get one entry by its original tuple.
    pub fn get(buf: &mut Vec<u8>, seq: u32, ct: &Conntrack) {
        let lookup = Conntrack {
            orig: ct.orig.clone(),
            zone: ct.zone,
            ..Conntrack::default()
        };
        push_message(
            buf,
            ct_type(IPCTNL_MSG_CT_GET),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            family_of(ct),
            |w| encode_conntrack(w, &lookup),
        );
    }

    /// Create an entry; fails with EEXIST if it exists. A status, if
    /// given, gets `IPS_CONFIRMED` forced on as libnetfilter_conntrack
    /// does: the kernel refuses (EBUSY) a status that would unconfirm it.
    pub fn create(buf: &mut Vec<u8>, seq: u32, ct: &Conntrack) {
        let confirmed;
        let ct = match ct.status {
            Some(status) if status & conntrack_model::consts::status::CONFIRMED == 0 => {
                let mut copy = ct.clone();
                copy.status = Some(status | conntrack_model::consts::status::CONFIRMED);
                confirmed = copy;
                &confirmed
            }
            _ => ct,
        };
        push_message(
            buf,
            ct_type(IPCTNL_MSG_CT_NEW),
            NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
            seq,
            family_of(ct),
            |w| encode_conntrack(w, ct),
        );
    }

    /// Update an existing entry; fails with ENOENT if it does not exist.
    pub fn update(buf: &mut Vec<u8>, seq: u32, ct: &Conntrack) {
        push_message(
            buf,
            ct_type(IPCTNL_MSG_CT_NEW),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            family_of(ct),
            |w| encode_conntrack(w, ct),
        );
    }

    /// Delete one entry by original tuple (and id, if known).
    pub fn delete(buf: &mut Vec<u8>, seq: u32, ct: &Conntrack) {
        let key = Conntrack {
            orig: ct.orig.clone(),
            zone: ct.zone,
            id: ct.id,
            ..Conntrack::default()
        };
        push_message(
            buf,
            ct_type(IPCTNL_MSG_CT_DELETE),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            family_of(ct),
            |w| encode_conntrack(w, &key),
        );
    }

    /// Dump the expectation table.
    pub fn dump_expect(buf: &mut Vec<u8>, seq: u32, family: u8) {
        push_message(
            buf,
            exp_type(IPCTNL_MSG_CT_GET),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family,
            |_| {},
        );
    }

    /// Create an expectation.
    pub fn create_expect(buf: &mut Vec<u8>, seq: u32, exp: &Expect) {
        push_message(
            buf,
            exp_type(IPCTNL_MSG_CT_NEW),
            NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
            seq,
            family_of_expect(exp),
            |w| encode_expect(w, exp),
        );
    }

    /// Delete an expectation by its tuple.
    pub fn delete_expect(buf: &mut Vec<u8>, seq: u32, exp: &Expect) {
        let key = Expect {
            tuple: exp.tuple.clone(),
            zone: exp.zone,
            ..Expect::default()
        };
        push_message(
            buf,
            exp_type(IPCTNL_MSG_CT_DELETE),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            family_of_expect(exp),
            |w| encode_expect(w, &key),
        );
    }

    /// Flush the whole expectation table.
    pub fn flush_expect(buf: &mut Vec<u8>, seq: u32) {
        push_message(
            buf,
            exp_type(IPCTNL_MSG_CT_DELETE),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            0,
            |_| {},
        );
    }

    /// Flush the whole conntrack table.
    pub fn flush(buf: &mut Vec<u8>, seq: u32) {
        push_message(
            buf,
            ct_type(IPCTNL_MSG_CT_DELETE),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            0,
            |_| {},
        );
    }
}
