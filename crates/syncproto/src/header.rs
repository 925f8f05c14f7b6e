//! The 8-byte message header and the control messages (docs/wire-protocol.md §2,
//! §3).

/// Protocol version carried in the high nibble of byte 0.
pub const VERSION: u8 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 8;
/// Size of ACK, NACK and RESYNC messages.
pub const LONG_CONTROL_LEN: usize = 16;

/// Flag bits of byte 1.
pub mod flags {
    pub const UNUSED: u8 = 0x01;
    pub const RESYNC: u8 = 0x02;
    pub const NACK: u8 = 0x04;
    pub const ACK: u8 = 0x08;
    pub const ALIVE: u8 = 0x10;
    pub const HELLO: u8 = 0x20;
    pub const HELLO_BACK: u8 = 0x40;
}

/// Message type (low nibble of byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    CtNew,
    CtUpdate,
    CtDelete,
    ExpNew,
    ExpUpdate,
    ExpDelete,
    Control,
    /// 6..9 and 11..15: rejected by receivers.
    Unknown(u8),
}

impl MsgType {
    pub fn from_nibble(v: u8) -> MsgType {
        match v {
            0 => MsgType::CtNew,
            1 => MsgType::CtUpdate,
            2 => MsgType::CtDelete,
            3 => MsgType::ExpNew,
            4 => MsgType::ExpUpdate,
            5 => MsgType::ExpDelete,
            10 => MsgType::Control,
            other => MsgType::Unknown(other & 0x0f),
        }
    }

    pub fn nibble(self) -> u8 {
        match self {
            MsgType::CtNew => 0,
            MsgType::CtUpdate => 1,
            MsgType::CtDelete => 2,
            MsgType::ExpNew => 3,
            MsgType::ExpUpdate => 4,
            MsgType::ExpDelete => 5,
            MsgType::Control => 10,
            MsgType::Unknown(v) => v & 0x0f,
        }
    }
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub kind: MsgType,
    pub flags: u8,
    /// Total length of the message, header included.
    pub len: u16,
    pub seq: u32,
}

impl Header {
    /// Reads a header from the first 8 bytes; None if fewer are given.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            version: b[0] >> 4,
            kind: MsgType::from_nibble(b[0] & 0x0f),
            flags: b[1],
            len: u16::from_be_bytes([b[2], b[3]]),
            seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    /// Appends the header's 8 bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push((self.version << 4) | self.kind.nibble());
        out.push(self.flags);
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
    }

    /// Data message: type 0..5 and no flag but HELLO/HELLO_BACK
    /// (docs/wire-protocol.md §2.3).
    pub fn is_data(&self) -> bool {
        self.kind.nibble() <= 5 && self.flags & !(flags::HELLO | flags::HELLO_BACK) == 0
    }

    fn is_control_with(&self, flag: u8) -> bool {
        self.kind == MsgType::Control && self.flags & flag != 0
    }

    pub fn is_ack(&self) -> bool {
        self.is_control_with(flags::ACK)
    }
    pub fn is_nack(&self) -> bool {
        self.is_control_with(flags::NACK)
    }
    pub fn is_resync(&self) -> bool {
        self.is_control_with(flags::RESYNC)
    }
    pub fn is_alive(&self) -> bool {
        self.is_control_with(flags::ALIVE)
    }
    pub fn is_hello(&self) -> bool {
        self.flags & flags::HELLO != 0
    }
    pub fn is_hello_back(&self) -> bool {
        self.flags & flags::HELLO_BACK != 0
    }
    /// ACK, NACK and RESYNC carry a 16-byte body.
    pub fn is_long_control(&self) -> bool {
        self.is_ack() || self.is_nack() || self.is_resync()
    }
}

/// A control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Alive,
    Ack { from: u32, to: u32 },
    Nack { from: u32, to: u32 },
    Resync,
}

impl Control {
    /// The flag that identifies the kind.
    pub fn flags(&self) -> u8 {
        match self {
            Control::Alive => flags::ALIVE,
            Control::Ack { .. } => flags::ACK,
            Control::Nack { .. } => flags::NACK,
            Control::Resync => flags::RESYNC,
        }
    }

    /// Encodes the message with sequence number `seq` and extra flags
    /// (HELLO / HELLO_BACK) piggy-backed.
    pub fn encode(&self, seq: u32, extra_flags: u8, out: &mut Vec<u8>) {
        let (flag, range) = match *self {
            Control::Alive => (flags::ALIVE, None),
            Control::Ack { from, to } => (flags::ACK, Some((from, to))),
            Control::Nack { from, to } => (flags::NACK, Some((from, to))),
            Control::Resync => (flags::RESYNC, Some((0, 0))),
        };
        let len = if range.is_some() {
            LONG_CONTROL_LEN
        } else {
            HEADER_LEN
        };
        Header {
            version: VERSION,
            kind: MsgType::Control,
            flags: flag | extra_flags,
            len: len as u16,
            seq,
        }
        .write(out);
        if let Some((from, to)) = range {
            out.extend_from_slice(&from.to_be_bytes());
            out.extend_from_slice(&to.to_be_bytes());
        }
    }

    /// Reads the control message of a framed message, in the FTFW order
    /// of precedence (ACK, NACK, RESYNC, ALIVE). None if it is not one, or
    /// if an ACK/NACK range runs backwards (a malformed header).
    pub fn decode(header: &Header, message: &[u8]) -> Option<Control> {
        let range = || -> Option<(u32, u32)> {
            let b = message.get(8..16)?;
            let from = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let to = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            Some((from, to))
        };
        if header.is_ack() {
            let (from, to) = range()?;
            return (!crate::seq::before(to, from)).then_some(Control::Ack { from, to });
        }
        if header.is_nack() {
            let (from, to) = range()?;
            return (!crate::seq::before(to, from)).then_some(Control::Nack { from, to });
        }
        if header.is_resync() {
            return Some(Control::Resync);
        }
        if header.is_alive() {
            return Some(Control::Alive);
        }
        None
    }
}
