//! `--json` (our extension): the client asks with the request code plus
//! `conntrackd_core::request::JSON_FLAG`, and the daemon answers with one JSON document — the
//! counters of [`Snapshot`] for `-s`, an array of flows or expectations for
//! `-i`/`-e`. Fields are documented in docs/json.md.

use conntrack_model::consts::{l4proto_name, status, tcp_state};
use conntrack_model::{Conntrack, Expect, Tuple};
use serde_json::{Map, Value, json};

/// Status bit names, lowest bit first (`enum ip_conntrack_status`).
const STATUS_NAMES: [(u32, &str); 16] = [
    (status::EXPECTED, "EXPECTED"),
    (status::SEEN_REPLY, "SEEN_REPLY"),
    (status::ASSURED, "ASSURED"),
    (status::CONFIRMED, "CONFIRMED"),
    (status::SRC_NAT, "SRC_NAT"),
    (status::DST_NAT, "DST_NAT"),
    (status::SEQ_ADJUST, "SEQ_ADJUST"),
    (status::SRC_NAT_DONE, "SRC_NAT_DONE"),
    (status::DST_NAT_DONE, "DST_NAT_DONE"),
    (status::DYING, "DYING"),
    (status::FIXED_TIMEOUT, "FIXED_TIMEOUT"),
    (status::TEMPLATE, "TEMPLATE"),
    (status::UNTRACKED, "UNTRACKED"),
    (status::HELPER, "HELPER"),
    (status::OFFLOAD, "OFFLOAD"),
    (status::HW_OFFLOAD, "HW_OFFLOAD"),
];

fn tuple(t: &Tuple) -> Value {
    let mut m = Map::new();
    m.insert("src".into(), json!(t.src.to_string()));
    m.insert("dst".into(), json!(t.dst.to_string()));
    if let Some(p) = t.src_port {
        m.insert("sport".into(), json!(p));
    }
    if let Some(p) = t.dst_port {
        m.insert("dport".into(), json!(p));
    }
    if let Some(v) = t.icmp_type {
        m.insert("icmp_type".into(), json!(v));
    }
    if let Some(v) = t.icmp_code {
        m.insert("icmp_code".into(), json!(v));
    }
    if let Some(v) = t.icmp_id {
        m.insert("icmp_id".into(), json!(v));
    }
    Value::Object(m)
}

fn family(t: &Tuple) -> &'static str {
    if t.src.is_ipv4() { "ipv4" } else { "ipv6" }
}

/// One cached flow. `active_seconds` and `expires_in_seconds` are the
/// `[active since]` and `[expires in]` of the text dump.
pub fn flow(
    ct: &Conntrack,
    text: &str,
    active_seconds: u64,
    expires_in_seconds: Option<u64>,
) -> Value {
    let mut m = Map::new();
    if let Some(orig) = &ct.orig {
        m.insert("family".into(), json!(family(orig)));
        m.insert("protocol".into(), json!(l4proto_name(orig.l4proto)));
        m.insert("protocol_number".into(), json!(orig.l4proto));
        m.insert("original".into(), tuple(orig));
    }
    if let Some(reply) = &ct.reply {
        m.insert("reply".into(), tuple(reply));
    }
    if let Some(state) = ct.tcp.as_ref().and_then(|t| t.state) {
        let name = tcp_state::NAMES
            .get(usize::from(state))
            .copied()
            .unwrap_or("UNKNOWN");
        m.insert("state".into(), json!(name));
    }
    if let Some(bits) = ct.status {
        let names: Vec<&str> = STATUS_NAMES
            .iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, name)| *name)
            .collect();
        m.insert("status".into(), json!(names));
    }
    for (key, value) in [
        ("mark", ct.mark),
        ("secmark", ct.secmark),
        ("zone", ct.zone.map(u32::from)),
    ] {
        if let Some(v) = value {
            m.insert(key.into(), json!(v));
        }
    }
    if let Some(helper) = &ct.helper {
        m.insert("helper".into(), json!(helper));
    }
    if let Some(master) = &ct.master {
        m.insert("master".into(), tuple(master));
    }
    if let Some(labels) = &ct.labels {
        let bits: Vec<usize> = labels
            .iter()
            .enumerate()
            .flat_map(|(byte, b)| {
                (0..8)
                    .filter(move |i| b & (1 << i) != 0)
                    .map(move |i| byte * 8 + i)
            })
            .collect();
        m.insert("labels".into(), json!(bits));
    }
    m.insert("active_seconds".into(), json!(active_seconds));
    if let Some(left) = expires_in_seconds {
        m.insert("expires_in_seconds".into(), json!(left));
    }
    m.insert("text".into(), json!(text));
    Value::Object(m)
}

/// One cached expectation.
pub fn expectation(exp: &Expect, text: &str) -> Value {
    let mut m = Map::new();
    if let Some(t) = &exp.tuple {
        m.insert("family".into(), json!(family(t)));
        m.insert("protocol".into(), json!(l4proto_name(t.l4proto)));
        m.insert("tuple".into(), tuple(t));
    }
    if let Some(t) = &exp.mask {
        m.insert("mask".into(), tuple(t));
    }
    if let Some(t) = &exp.master {
        m.insert("master".into(), tuple(t));
    }
    if let Some(h) = &exp.helper {
        m.insert("helper".into(), json!(h));
    }
    for (key, value) in [
        ("zone", exp.zone.map(u32::from)),
        ("flags", exp.flags),
        ("class", exp.class),
    ] {
        if let Some(v) = value {
            m.insert(key.into(), json!(v));
        }
    }
    m.insert("text".into(), json!(text));
    Value::Object(m)
}

/// A document as the daemon sends it: pretty, one trailing newline.
pub fn render(value: &impl serde::Serialize) -> String {
    let mut text = pretty(value);
    text.push('\n');
    text
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| json!({ "error": format!("can't encode: {e}") }).to_string())
}

/// Writes a top-level array one element at a time, byte for byte as
/// [`render`] writes the whole array, so a dump need not be held in memory.
#[derive(Debug, Default, Clone)]
pub struct ArrayWriter {
    opened: bool,
}

impl ArrayWriter {
    pub fn element(&mut self, out: &mut String, value: &impl serde::Serialize) {
        out.push_str(if self.opened { ",\n" } else { "[\n" });
        self.opened = true;
        // One level deeper: JSON text has no raw newline inside a string,
        // so indenting after each newline indents every line.
        out.push_str("  ");
        out.push_str(&pretty(value).replace('\n', "\n  "));
    }

    pub fn finish(&mut self, out: &mut String) {
        out.push_str(if self.opened { "\n]\n" } else { "[]\n" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_written_element_by_element_is_the_rendered_array() {
        let values = [
            json!({ "a": 1, "b": { "c": [1, 2], "d": "x\ny" }, "e": [] }),
            json!({}),
            json!([{ "f": null }]),
        ];
        for n in 0..=values.len() {
            let mut writer = ArrayWriter::default();
            let mut out = String::new();
            for v in &values[..n] {
                writer.element(&mut out, v);
            }
            writer.finish(&mut out);
            assert_eq!(out, render(&values[..n].to_vec()), "{n} elements");
        }
    }
}
