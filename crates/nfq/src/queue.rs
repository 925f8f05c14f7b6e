//! nfnetlink_queue (subsystem 3): the messages an NFQUEUE user sends and
//! receives.
//!
//! - `NFQNL_MSG_CONFIG` binds this socket to a queue (`NFQA_CFG_CMD`),
//!   sets what is copied (`NFQA_CFG_PARAMS`), the queue's length
//!   (`NFQA_CFG_QUEUE_MAXLEN`) and flags (`NFQA_CFG_MASK` and
//!   `NFQA_CFG_FLAGS`: fail-open, conntrack attached, …);
//! - `NFQNL_MSG_PACKET` carries a queued packet: its header (id, layer-2
//!   protocol, hook) and payload, and, if asked for and the kernel can,
//!   its conntrack (`NFQA_CT`, `NFQA_CT_INFO`);
//! - `NFQNL_MSG_VERDICT` gives one packet its verdict,
//!   `NFQNL_MSG_VERDICT_BATCH` every packet of the queue up to an id.
//!
//! The queue number travels in the nfgenmsg's res_id (big endian).

use conntrack_model::Conntrack;
use ctnl::nla::attributes;

use crate::DecodeError;
use crate::frame::{AF_UNSPEC, Frame, NLM_F_ACK, NLM_F_REQUEST, push_message};

pub const NFNL_SUBSYS_QUEUE: u16 = 3;
pub const NFQNL_MSG_PACKET: u16 = 0;
pub const NFQNL_MSG_VERDICT: u16 = 1;
pub const NFQNL_MSG_CONFIG: u16 = 2;
pub const NFQNL_MSG_VERDICT_BATCH: u16 = 3;

pub const NFQA_PACKET_HDR: u16 = 1;
pub const NFQA_VERDICT_HDR: u16 = 2;
pub const NFQA_MARK: u16 = 3;
pub const NFQA_TIMESTAMP: u16 = 4;
pub const NFQA_IFINDEX_INDEV: u16 = 5;
pub const NFQA_IFINDEX_OUTDEV: u16 = 6;
pub const NFQA_HWADDR: u16 = 9;
pub const NFQA_PAYLOAD: u16 = 10;
pub const NFQA_CT: u16 = 11;
pub const NFQA_CT_INFO: u16 = 12;
pub const NFQA_CAP_LEN: u16 = 13;
pub const NFQA_SKB_INFO: u16 = 14;
pub const NFQA_EXP: u16 = 15;

pub const NFQA_CFG_CMD: u16 = 1;
pub const NFQA_CFG_PARAMS: u16 = 2;
pub const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
pub const NFQA_CFG_MASK: u16 = 4;
pub const NFQA_CFG_FLAGS: u16 = 5;

/// `NFQA_CFG_FLAGS` bits.
pub mod flags {
    /// Accept packets instead of dropping them when the queue is full.
    pub const FAIL_OPEN: u32 = 1 << 0;
    /// Attach the packet's conntrack (needs NETLINK_GLUE_CT).
    pub const CONNTRACK: u32 = 1 << 1;
    /// Queue GSO packets whole.
    pub const GSO: u32 = 1 << 2;
}

/// `enum nfqnl_msg_config_cmds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Command {
    Bind = 1,
    Unbind = 2,
    /// Obsolete since Linux 3.8 (no-ops), still sent by 1.4.7.
    PfBind = 3,
    PfUnbind = 4,
}

/// `enum nfqnl_config_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CopyMode {
    None = 0,
    Meta = 1,
    Packet = 2,
}

/// Netfilter verdicts.
pub const NF_DROP: u32 = 0;
pub const NF_ACCEPT: u32 = 1;

fn kind(msg: u16) -> u16 {
    (NFNL_SUBSYS_QUEUE << 8) | msg
}

/// Appends a config command for `queue` (acknowledged).
pub fn config_command(buf: &mut Vec<u8>, seq: u32, queue: u16, command: Command, pf: u16) {
    push_message(
        buf,
        kind(NFQNL_MSG_CONFIG),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        (AF_UNSPEC, queue),
        |w| {
            let pf = pf.to_be_bytes();
            w.bytes(NFQA_CFG_CMD, &[command as u8, 0, pf[0], pf[1]]);
        },
    );
}

/// The parameters of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueParams {
    pub copy_mode: CopyMode,
    /// Bytes of each packet copied.
    pub copy_range: u32,
    /// `QueueLen`; None keeps the kernel's (1024).
    pub max_len: Option<u32>,
    /// `flags::*` to set …
    pub flags: u32,
    /// … among these.
    pub mask: u32,
}

/// Appends the parameters of `queue` (acknowledged).
pub fn config_params(buf: &mut Vec<u8>, seq: u32, queue: u16, params: &QueueParams) {
    push_message(
        buf,
        kind(NFQNL_MSG_CONFIG),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        (AF_UNSPEC, queue),
        |w| {
            let mut p = params.copy_range.to_be_bytes().to_vec();
            p.push(params.copy_mode as u8);
            w.bytes(NFQA_CFG_PARAMS, &p);
            if let Some(len) = params.max_len {
                w.be32(NFQA_CFG_QUEUE_MAXLEN, len);
            }
            if params.mask != 0 {
                w.be32(NFQA_CFG_MASK, params.mask);
                w.be32(NFQA_CFG_FLAGS, params.flags);
            }
        },
    );
}

/// Appends the verdict on packet `id` of `queue` (not acknowledged: the
/// kernel answers only an error).
pub fn verdict(buf: &mut Vec<u8>, seq: u32, queue: u16, id: u32, verdict: u32) {
    push_message(
        buf,
        kind(NFQNL_MSG_VERDICT),
        NLM_F_REQUEST,
        seq,
        (AF_UNSPEC, queue),
        |w| {
            let mut v = verdict.to_be_bytes().to_vec();
            v.extend_from_slice(&id.to_be_bytes());
            w.bytes(NFQA_VERDICT_HDR, &v);
        },
    );
}

/// Appends a verdict on every packet of `queue` up to id `last_id`.
pub fn verdict_batch(buf: &mut Vec<u8>, seq: u32, queue: u16, last_id: u32, verdict: u32) {
    push_message(
        buf,
        kind(NFQNL_MSG_VERDICT_BATCH),
        NLM_F_REQUEST,
        seq,
        (AF_UNSPEC, queue),
        |w| {
            let mut v = verdict.to_be_bytes().to_vec();
            v.extend_from_slice(&last_id.to_be_bytes());
            w.bytes(NFQA_VERDICT_HDR, &v);
        },
    );
}

/// A queued packet, borrowing the received datagram.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueuedPacket<'a> {
    pub queue: u16,
    /// nfgenmsg family: the hook's protocol family (2, 10).
    pub family: u8,
    pub packet_id: u32,
    /// Layer-2 protocol (0x0800 IPv4, 0x86dd IPv6).
    pub hw_protocol: u16,
    pub hook: u8,
    pub mark: Option<u32>,
    pub indev: Option<u32>,
    pub outdev: Option<u32>,
    /// From the IP header on (up to the copy range).
    pub payload: &'a [u8],
    /// The packet's length when the copy was cut short.
    pub cap_len: Option<u32>,
    pub skb_info: Option<u32>,
    /// The conntrack attributes (NFQA_CT), when attached.
    pub ct: Option<&'a [u8]>,
    /// `enum ip_conntrack_info`, with `ct`.
    pub ct_info: Option<u32>,
}

impl QueuedPacket<'_> {
    /// The attached conntrack, decoded.
    pub fn conntrack(&self) -> Option<Result<Conntrack, DecodeError>> {
        self.ct
            .map(|attrs| ctnl::conntrack::decode_conntrack(attrs).map_err(DecodeError::from))
    }
}

/// Decodes an `NFQNL_MSG_PACKET` frame.
pub fn decode_packet<'a>(frame: &Frame<'a>) -> Result<QueuedPacket<'a>, DecodeError> {
    if frame.kind != kind(NFQNL_MSG_PACKET) {
        return Err(DecodeError::WrongSubsystem);
    }
    let (family, queue, attrs) = frame.nfgen()?;
    let mut packet = QueuedPacket {
        queue,
        family,
        ..QueuedPacket::default()
    };
    let mut have_header = false;
    for nla in attributes(attrs) {
        let nla = nla?;
        match nla.kind {
            NFQA_PACKET_HDR => {
                let h: [u8; 7] = nla.fixed()?;
                packet.packet_id = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
                packet.hw_protocol = u16::from_be_bytes([h[4], h[5]]);
                packet.hook = h[6];
                have_header = true;
            }
            NFQA_MARK => packet.mark = Some(nla.be32()?),
            NFQA_IFINDEX_INDEV => packet.indev = Some(nla.be32()?),
            NFQA_IFINDEX_OUTDEV => packet.outdev = Some(nla.be32()?),
            NFQA_PAYLOAD => packet.payload = nla.payload,
            NFQA_CAP_LEN => packet.cap_len = Some(nla.be32()?),
            NFQA_SKB_INFO => packet.skb_info = Some(nla.be32()?),
            NFQA_CT => packet.ct = Some(nla.payload),
            NFQA_CT_INFO => packet.ct_info = Some(nla.be32()?),
            _ => {}
        }
    }
    if !have_header {
        return Err(DecodeError::MissingAttribute("NFQA_PACKET_HDR"));
    }
    Ok(packet)
}
