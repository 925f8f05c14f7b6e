//! nfnetlink_cthelper (subsystem 9): user-space helper stubs in the
//! kernel. A stub names a helper for a layer-3/layer-4 pair, the queue
//! its packets go to, its expectation policies, and, when it is created,
//! how much per-flow data the kernel keeps for it
//! (`NFCTH_PRIV_DATA_LEN`). The kernel refuses a creation without that
//! length (EINVAL), so a stub that already exists (`nfct add helper`) is
//! updated by a NEW message without it: this is what `Setup off` does in
//! 1.4.7, while `Setup on` sends the length and deletes the stub at exit.
//! A kernel without the subsystem (CONFIG_NF_CT_NETLINK_HELPER off)
//! answers EINVAL too.

use ctnl::nla::attributes;

use crate::DecodeError;
use crate::frame::{
    AF_UNSPEC, Frame, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST, push_message,
};

pub const NFNL_SUBSYS_CTHELPER: u16 = 9;
pub const NFNL_MSG_CTHELPER_NEW: u16 = 0;
pub const NFNL_MSG_CTHELPER_GET: u16 = 1;
pub const NFNL_MSG_CTHELPER_DEL: u16 = 2;

pub const NFCTH_NAME: u16 = 1;
pub const NFCTH_TUPLE: u16 = 2;
pub const NFCTH_QUEUE_NUM: u16 = 3;
pub const NFCTH_POLICY: u16 = 4;
pub const NFCTH_PRIV_DATA_LEN: u16 = 5;
pub const NFCTH_STATUS: u16 = 6;
pub const NFCTH_TUPLE_L3PROTONUM: u16 = 1;
pub const NFCTH_TUPLE_L4PROTONUM: u16 = 2;
pub const NFCTH_POLICY_SET_NUM: u16 = 1;
/// `NFCTH_POLICY_SET1`; up to four sets.
pub const NFCTH_POLICY_SET: u16 = 2;
pub const NFCTH_POLICY_NAME: u16 = 1;
pub const NFCTH_POLICY_EXPECT_MAX: u16 = 2;
pub const NFCTH_POLICY_EXPECT_TIMEOUT: u16 = 3;
/// `NFCT_HELPER_STATUS_ENABLED`.
pub const STATUS_ENABLED: u32 = 1;

/// One expectation policy of a stub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubPolicy {
    pub name: String,
    pub expect_max: u32,
    pub expect_timeout: u32,
}

/// A helper stub.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HelperStub {
    pub name: String,
    /// Layer-3 protocol (AF_INET 2, AF_INET6 10).
    pub l3num: u16,
    pub l4num: u8,
    pub queue_num: Option<u32>,
    pub policies: Vec<StubPolicy>,
    /// Sent only to create the stub.
    pub priv_data_len: Option<u32>,
    pub status: Option<u32>,
}

fn kind(msg: u16) -> u16 {
    (NFNL_SUBSYS_CTHELPER << 8) | msg
}

/// Appends a NEW message: creates the stub, or updates an existing one
/// (attributes in the order 1.4.7 sends them).
pub fn new_stub(buf: &mut Vec<u8>, seq: u32, stub: &HelperStub) {
    push_message(
        buf,
        kind(NFNL_MSG_CTHELPER_NEW),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
        seq,
        (AF_UNSPEC, 0),
        |w| {
            w.string(NFCTH_NAME, &stub.name);
            if let Some(q) = stub.queue_num {
                w.be32(NFCTH_QUEUE_NUM, q);
            }
            if let Some(len) = stub.priv_data_len {
                w.be32(NFCTH_PRIV_DATA_LEN, len);
            }
            encode_tuple(w, stub);
            if !stub.policies.is_empty() {
                w.nested(NFCTH_POLICY, |w| {
                    for (i, p) in stub.policies.iter().enumerate() {
                        let set = NFCTH_POLICY_SET + u16::try_from(i).unwrap_or(0);
                        w.nested(set, |w| {
                            w.string(NFCTH_POLICY_NAME, &p.name);
                            w.be32(NFCTH_POLICY_EXPECT_MAX, p.expect_max);
                            w.be32(NFCTH_POLICY_EXPECT_TIMEOUT, p.expect_timeout);
                        });
                    }
                    let count = u32::try_from(stub.policies.len()).unwrap_or(0);
                    w.be32(NFCTH_POLICY_SET_NUM, count);
                });
            }
            if let Some(s) = stub.status {
                w.be32(NFCTH_STATUS, s);
            }
        },
    );
}

fn encode_tuple(w: &mut ctnl::nla::NlaWriter<'_>, stub: &HelperStub) {
    w.nested(NFCTH_TUPLE, |w| {
        w.be16(NFCTH_TUPLE_L3PROTONUM, stub.l3num);
        w.u8(NFCTH_TUPLE_L4PROTONUM, stub.l4num);
    });
}

/// Appends a DEL message for the stub (name and tuple).
pub fn delete_stub(buf: &mut Vec<u8>, seq: u32, stub: &HelperStub) {
    push_message(
        buf,
        kind(NFNL_MSG_CTHELPER_DEL),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        (AF_UNSPEC, 0),
        |w| {
            w.string(NFCTH_NAME, &stub.name);
            encode_tuple(w, stub);
        },
    );
}

/// Appends a dump request of every stub.
pub fn dump_stubs(buf: &mut Vec<u8>, seq: u32) {
    push_message(
        buf,
        kind(NFNL_MSG_CTHELPER_GET),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        (AF_UNSPEC, 0),
        |_| {},
    );
}

/// Decodes a stub message (NEW, or a dump entry).
pub fn decode_stub(frame: &Frame<'_>) -> Result<HelperStub, DecodeError> {
    if frame.kind >> 8 != NFNL_SUBSYS_CTHELPER {
        return Err(DecodeError::WrongSubsystem);
    }
    let (_, _, attrs) = frame.nfgen()?;
    let mut stub = HelperStub::default();
    for nla in attributes(attrs) {
        let nla = nla?;
        match nla.kind {
            NFCTH_NAME => stub.name = nla.string()?,
            NFCTH_QUEUE_NUM => stub.queue_num = Some(nla.be32()?),
            NFCTH_PRIV_DATA_LEN => stub.priv_data_len = Some(nla.be32()?),
            NFCTH_STATUS => stub.status = Some(nla.be32()?),
            NFCTH_TUPLE => {
                for inner in attributes(nla.payload) {
                    let inner = inner?;
                    match inner.kind {
                        NFCTH_TUPLE_L3PROTONUM => stub.l3num = inner.be16()?,
                        NFCTH_TUPLE_L4PROTONUM => stub.l4num = inner.u8()?,
                        _ => {}
                    }
                }
            }
            NFCTH_POLICY => {
                for set in attributes(nla.payload) {
                    let set = set?;
                    if set.kind < NFCTH_POLICY_SET {
                        continue;
                    }
                    let mut policy = StubPolicy {
                        name: String::new(),
                        expect_max: 0,
                        expect_timeout: 0,
                    };
                    for field in attributes(set.payload) {
                        let field = field?;
                        match field.kind {
                            NFCTH_POLICY_NAME => policy.name = field.string()?,
                            NFCTH_POLICY_EXPECT_MAX => policy.expect_max = field.be32()?,
                            NFCTH_POLICY_EXPECT_TIMEOUT => policy.expect_timeout = field.be32()?,
                            _ => {}
                        }
                    }
                    stub.policies.push(policy);
                }
            }
            _ => {}
        }
    }
    if stub.name.is_empty() {
        return Err(DecodeError::MissingAttribute("NFCTH_NAME"));
    }
    Ok(stub)
}
